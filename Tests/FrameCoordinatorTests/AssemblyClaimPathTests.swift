import FrameCore
import FrameStore
import Foundation
import FrameTestSupport
import Testing
@testable import FrameCoordinator

/// The local-disk archive path takes the same assembly claim as the object-store slice path
/// (migration 12): a claim a live peer holds (as a slice-path claimer records it) keeps this
/// coordinator from assembling; the peer's death lets it take the claim over, exactly once.
@Suite(.serialized, .timeLimit(.minutes(3))) struct AssemblyClaimPathTests {
    @Test func aLocalAssemblyWaitsForAPeersClaimAndTakesItOverWhenThePeerDies() async throws {
        let h = try await PipelineTests.makeHarness()
        defer { try? FileManager.default.removeItem(at: h.dir) }
        let coordinators = CoordinatorStore(database: h.database)
        try await coordinators.announce(id: "peer", httpAddress: "", clusterAddress: "", ttl: .seconds(120))
        let video = try Fixtures.video(seconds: 4, name: "claimpath.mp4")
        // No node yet, so nothing is leased before the peer's claim is in place.
        let job = try await PipelineTests.submit(h, video: video, rate: Rational(1, 1))
        try await h.database.withConnection { conn in
            // What the slice path's claimAssembly(id:claimer:ttl:) leaves behind for a claimer
            // mid-assembly (its TTL far off, renewed as it uploads).
            _ = try conn.query("""
                UPDATE jobs SET assembly_claimed_by = 'peer', assembly_claim_expires_at = now() + interval '10 minutes',
                    assembly_upload_id = 'peer-upload'
                WHERE id = $1::uuid
                """, job.id)
        }
        let agent = try PipelineTests.startAgent(h, name: "claimpath-a", slots: 2)
        defer { agent.cancel() }
        let jobs = JobStore(database: h.database)
        try await TestCluster.eventually(timeout: .seconds(60), "every segment done") {
            try await jobs.get(id: job.id).map { $0.segmentsDone == $0.segmentCount } ?? false
        }
        // The last SEGMENT_DONE triggers this coordinator's assembly at once; give it time to try.
        try await Task.sleep(for: .seconds(2))
        #expect(try await jobs.get(id: job.id)?.status == .processing, "assembled under a live peer's claim")
        #expect(!FileManager.default.fileExists(atPath: h.service.layout.result(job.id).path))

        try await coordinators.expire(ids: ["peer"])
        let done = try await PipelineTests.waitForStatus(h, job.id, [.completed, .failed], timeout: .seconds(30))
        #expect(done.status == .completed, "\(String(describing: done.errorCode)): \(done.errorMessage ?? "")")
        let me = try #require(h.service.scheduler).coordinatorID
        let claims = try await jobs.events(jobID: job.id).filter { $0.kind == .assemblyClaimed }
        #expect(claims.map(\.node) == [me], "taken over exactly once")
        #expect(claims.first?.detail?.contains("peer") == true)
        #expect(FileManager.default.fileExists(atPath: h.service.layout.result(job.id).path))
        await h.stop()
    }
}
