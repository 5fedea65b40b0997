import FrameFuzzChecks
import Foundation
import Testing

/// Replays the node-session fuzzer's committed inputs through the checks the fuzzer applies
/// (`Fuzz/FrameFuzzChecks/NodeSessionCheck.swift`): the seed corpus and every crash input kept in
/// `Fuzz/regressions/node-session`.
@Suite struct NodeSessionCorpusTests {
    static let replayed = FuzzCorpus.replayed("node-session")

    @Test func seedCorpusIsPresent() {
        #expect(FuzzCorpus.seeds("node-session").count >= 30)
    }

    @Test(arguments: replayed)
    func replay(_ path: String) throws {
        let bytes = try FuzzCorpus.bytes(path)
        do {
            try NodeSessionCheck.check(bytes)
        } catch {
            Issue.record("\(path): \(error)")
        }
    }
}
