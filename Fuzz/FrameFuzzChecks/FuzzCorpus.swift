import Foundation

/// The fuzzers' committed inputs, for the unit tests that replay them: the seed corpus
/// (`Fuzz/corpus/<target>`, written by `Fuzz/make-seeds`) and the crash inputs kept once fixed
/// (`Fuzz/regressions/<target>`). Found from this file's path, so a test replays the files of the
/// checkout it was built from.
public enum FuzzCorpus {
    /// The repository's `Fuzz/` directory.
    public static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // FrameFuzzChecks
        .deletingLastPathComponent()  // Fuzz

    /// Paths relative to `Fuzz/` of the seed inputs of `target` (none if the directory is missing).
    public static func seeds(_ target: String) -> [String] { files(in: "corpus/\(target)") }

    /// The seeds, then every kept crash input, of `target`.
    public static func replayed(_ target: String) -> [String] {
        seeds(target) + files(in: "regressions/\(target)")
    }

    /// The bytes of one input named by a path from ``seeds(_:)`` or ``replayed(_:)``.
    public static func bytes(_ path: String) throws -> [UInt8] {
        Array(try Data(contentsOf: directory.appendingPathComponent(path)))
    }

    static func files(in relative: String) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.appendingPathComponent(relative).path)) ?? []
        return names.filter { !$0.hasPrefix(".") && !$0.hasSuffix(".md") }.sorted().map { "\(relative)/\($0)" }
    }
}
