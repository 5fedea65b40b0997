import FrameCore
import Foundation
import Testing

@testable import FrameWire

/// Keeps proto-spec/errors.md and proto-spec/messages.md from drifting away
/// from the code they document.
@Suite struct ErrorsTableTests {
    struct Row: Hashable {
        var number: UInt16
        var name: String
        var fatal: String
        var retryable: String
    }

    static func tableRows() throws -> [Row] {
        let text = try String(contentsOf: VectorFiles.specDirectory.appendingPathComponent("errors.md"), encoding: .utf8)
        let begin = try #require(text.range(of: "<!-- error-table:begin -->"))
        let end = try #require(text.range(of: "<!-- error-table:end -->"))
        return text[begin.upperBound..<end.lowerBound].split(separator: "\n").compactMap { line in
            let cells = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            guard cells.count == 5, let number = UInt16(cells[0]) else { return nil }
            return Row(number: number, name: cells[1], fatal: cells[3], retryable: cells[4])
        }
    }

    @Test func errorsTableListsExactlyTheErrorCodes() throws {
        let rows = try Self.tableRows()
        #expect(rows.map(\.number) == ErrorCode.allCases.map(\.rawValue), "numbers, in order")
        #expect(rows.map(\.name) == ErrorCode.allCases.map(\.name), "names, in order")
        #expect(Set(rows.map(\.number)).count == rows.count, "no duplicate numbers")
    }

    @Test func errorsTableRetryableColumnMatchesTheCode() throws {
        for row in try Self.tableRows() {
            let code = try #require(ErrorCode(rawValue: row.number))
            #expect(row.retryable == (code.isRetryable ? "yes" : "no"), "\(row.name)")
            #expect(["fatal", "non-fatal", "n/a"].contains(row.fatal), "\(row.name): \(row.fatal)")
        }
    }

    @Test func errorsTableFatalColumnMatchesTheCodecErrors() throws {
        let rows = Dictionary(uniqueKeysWithValues: try Self.tableRows().map { ($0.number, $0) })
        for code in [ErrorCode.malformedFrame, .frameTooLarge, .unknownMessageType] {
            #expect(rows[code.rawValue]?.fatal == "fatal")
        }
        #expect(rows[ErrorCode.staleEpoch.rawValue]?.fatal == "non-fatal")
    }

    @Test func messagesSpecHasASectionPerMessageType() throws {
        let text = try String(contentsOf: VectorFiles.specDirectory.appendingPathComponent("messages.md"), encoding: .utf8)
        for type in MessageType.allCases {
            let hex = String(type.rawValue, radix: 16, uppercase: true)
            let heading = "## 0x\(hex.count == 1 ? "0" + hex : hex) \(type.name) "
            #expect(text.contains(heading), "missing heading '\(heading)'")
        }
    }
}
