import FrameCore
import FrameFuzzChecks
import FrameWire
import Foundation
import Testing

/// Replays the frame-decoder fuzzer's committed inputs through the checks the fuzzer applies
/// (`Fuzz/FrameFuzzChecks/FrameStreamCheck.swift`): the seed corpus and every crash input kept in
/// `Fuzz/regressions/frame-decoder`, so a fixed crash stays fixed without running the fuzzer.
@Suite struct FuzzCorpusTests {
    static let replayed = FuzzCorpus.replayed("frame-decoder")

    @Test func seedCorpusIsPresent() {
        // Guards the path: an empty list would make the replay below pass vacuously.
        #expect(FuzzCorpus.seeds("frame-decoder").count >= 30)
    }

    @Test(arguments: replayed)
    func replay(_ path: String) throws {
        let bytes = try FuzzCorpus.bytes(path)
        do {
            try FrameStreamCheck.check(bytes)
        } catch {
            Issue.record("\(path): \(error)")
        }
    }

    /// The vectors through the same checks: each valid one is one accepted frame, each invalid one is
    /// refused with the code its `# expect:` line names (with all three ways of decoding agreeing).
    @Test func vectorsPassTheFuzzChecks() throws {
        for name in VectorFiles.names(in: VectorFiles.validDirectory) {
            let vector = try VectorFiles.load(name, in: VectorFiles.validDirectory)
            let outcome = try FrameStreamCheck.check(vector.bytes)
            #expect(outcome.frames == [vector.bytes] && outcome.end == .waiting(pending: 0), "\(name)")
        }
        for name in VectorFiles.names(in: VectorFiles.invalidDirectory) {
            let vector = try VectorFiles.load(name, in: VectorFiles.invalidDirectory)
            let outcome = try FrameStreamCheck.check(vector.bytes)
            guard case .failed(let error) = outcome.end else {
                Issue.record("invalid/\(name) not refused: \(outcome.end)")
                continue
            }
            #expect(outcome.frames.isEmpty && error.code.name == vector.expect, "invalid/\(name): \(error)")
        }
    }
}
