import Foundation
import FrameTestSupport
import Testing

/// `systemctl stop` sends SIGTERM: the node drains, hands back the segments it
/// cannot finish within node.shutdown_grace (requeued at once, no attempt
/// charged), says GOODBYE and exits 0; the job completes on another node with
/// the same ZIP as `frameflow extract`.
@Suite(.serialized, .timeLimit(.minutes(4))) struct NodeShutdownTests {
    @Test func sigtermHandsLeasesBackSaysGoodbyeAndExitsZero() async throws {
        let cluster = try LocalCluster()
        defer { cluster.stop() }
        // 10 s segments (100 frames each at fps=10): a lease runs for a second or more, so the
        // SIGTERM below lands while one is running. With 2 s segments (about 0.35 s each) both of
        // the node's leases could finish between the check and the signal, leaving nothing to hand back.
        try cluster.startCoordinator(extra: ["--set", "coordinator.segment_seconds=10"])
        try await cluster.waitUntilReady()
        // Grace 0: whatever runs at the SIGTERM is handed back, so the test knows there is some.
        let node = try cluster.startNode("stop-a", extra: ["--slots", "2", "--set", "node.shutdown_grace=0s"])
        try await eventually(30, "stop-a online\n\(cluster.logs)") { await cluster.nodeState("stop-a") == "online" }
        let api = try CurlAPI.login(port: cluster.httpPort, email: "shutdown@example.com")
        let video = try Fixtures.video(seconds: 40, name: "shutdown.mp4", size: "640x480")
        let answer = try api.upload(video, fps: "10")
        #expect(answer.status == 201, "\(answer.body)")
        let id = try #require(CurlAPI.jobID(answer))
        try await eventually(60, "stop-a holds leases\n\(cluster.logs)") {
            let held = try FaultChecks.psql(cluster.databaseURL, "SELECT count(*) FROM segments WHERE node = 'stop-a' AND state = 'leased'")
            let done = try FaultChecks.psql(cluster.databaseURL, "SELECT count(*) FROM segments WHERE state = 'done'")
            return (Int(held) ?? 0) >= 1 && (Int(done) ?? 0) >= 1
        }
        node.signal(SIGTERM)
        let stoppedAt = Date()
        let status = await node.waitForExit(timeout: 10)
        print("measured: node SIGTERM to exit \(FaultChecks.seconds(since: stoppedAt)) s")
        #expect(status == 0, "exit status \(String(describing: status))\n\(node.output)")
        #expect(node.output.contains("handing the lease back"), "\(node.output)")

        // The coordinator heard GOODBYE (not a dropped connection) and requeued the handed-back leases uncharged.
        try await eventually(10, "stop-a offline") { await cluster.nodeState("stop-a") == "offline" }
        #expect(cluster.coordinator?.output.contains("goodbye: node shutting down") == true, "\(cluster.logs)")
        let handedBack = try FaultChecks.psql(cluster.databaseURL, """
            SELECT count(*) FROM job_events WHERE kind = 'lease_requeued' AND node = 'stop-a' AND reason = 'SHUTTING_DOWN'
            """)
        #expect((Int(handedBack) ?? 0) >= 1, "no lease handed back\n\(cluster.logs)")
        let failures = try FaultChecks.psql(cluster.databaseURL, "SELECT count(*) FROM job_events WHERE kind = 'segment_failed'")
        #expect(failures == "0")
        let charged = try FaultChecks.psql(cluster.databaseURL, "SELECT coalesce(max(attempts), 0) FROM segments WHERE state <> 'done'")
        #expect(charged == "0", "a handed-back segment was charged an attempt")

        try cluster.startNode("stop-b", extra: ["--slots", "2"])
        #expect(try await api.waitUntilFinished(id) == "COMPLETED", "\(cluster.logs)")
        try FaultChecks.expectSameZipAsExtract(api, id, video: video, fps: "10", dir: cluster.dir)
    }
}
