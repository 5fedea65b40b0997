import Foundation

/// Reads the annotated hex vectors straight from proto-spec/vectors, the
/// single source of truth (no copy in the test bundle that could drift).
enum VectorFiles {
    /// `<repo>/proto-spec`, located from this file's path: Tests/FrameWireTests/ -> ../../proto-spec.
    static let specDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // FrameWireTests
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()  // repository root
        .appendingPathComponent("proto-spec")
    static let validDirectory = specDirectory.appendingPathComponent("vectors")
    static let invalidDirectory = validDirectory.appendingPathComponent("invalid")

    struct Vector: Sendable {
        var bytes: [UInt8]
        /// The `# expect: NAME` of an invalid vector.
        var expect: String?
    }

    /// Base names (without `.hex`) of the vectors in a directory, sorted.
    static func names(in directory: URL) -> [String] {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return files.filter { $0.hasSuffix(".hex") }.map { String($0.dropLast(4)) }.sorted()
    }

    static func load(_ name: String, in directory: URL) throws -> Vector {
        let text = try String(contentsOf: directory.appendingPathComponent("\(name).hex"), encoding: .utf8)
        return try parse(text)
    }

    struct FormatError: Error, CustomStringConvertible {
        var description: String
    }

    /// Lowercase hex; whitespace ignored; `#` comments to end of line.
    static func parse(_ text: String) throws -> Vector {
        var digits: [UInt8] = []
        var expect: String?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            var content = Substring(line)
            if let hash = line.firstIndex(of: "#") {
                let comment = line[line.index(after: hash)...].trimmingCharacters(in: .whitespaces)
                if expect == nil, comment.hasPrefix("expect:") {
                    expect = comment.dropFirst("expect:".count).trimmingCharacters(in: .whitespaces)
                }
                content = line[..<hash]
            }
            for scalar in content.unicodeScalars where !scalar.properties.isWhitespace {
                switch scalar {
                case "0"..."9": digits.append(UInt8(scalar.value - 48))
                case "a"..."f": digits.append(UInt8(scalar.value - 87))
                default: throw FormatError(description: "not a lowercase hex digit: \(scalar)")
                }
            }
        }
        guard digits.count % 2 == 0 else { throw FormatError(description: "odd number of hex digits") }
        let bytes = stride(from: 0, to: digits.count, by: 2).map { digits[$0] << 4 | digits[$0 + 1] }
        return Vector(bytes: bytes, expect: expect)
    }
}
