import FrameFuzzChecks
import Foundation
import Testing

/// Replays the node-session fuzzer's committed inputs through the checks the fuzzer applies
/// (`Fuzz/FrameFuzzChecks/NodeSessionCheck.swift`): the seed corpus and every crash input kept in
/// `Fuzz/regressions/node-session`.
@Suite struct NodeSessionCorpusTests {
    static let fuzzDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // FrameSessionTests
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()  // repository root
        .appendingPathComponent("Fuzz")

    static func inputs(_ directories: String...) -> [String] {
        directories.flatMap { directory in
            let files = (try? FileManager.default.contentsOfDirectory(atPath: fuzzDirectory.appendingPathComponent(directory).path)) ?? []
            return files.filter { !$0.hasPrefix(".") && !$0.hasSuffix(".md") }.sorted().map { "\(directory)/\($0)" }
        }
    }

    static let replayed = inputs("corpus/node-session", "regressions/node-session")

    @Test func seedCorpusIsPresent() {
        #expect(Self.inputs("corpus/node-session").count >= 30)
    }

    @Test(arguments: replayed)
    func replay(_ path: String) throws {
        let bytes = try Data(contentsOf: Self.fuzzDirectory.appendingPathComponent(path))
        do {
            try NodeSessionCheck.check(Array(bytes))
        } catch {
            Issue.record("\(path): \(error)")
        }
    }
}
