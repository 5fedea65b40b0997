import Foundation
import FrameTestSupport
import Testing

/// PostgreSQL stops for a few seconds in the middle of a job, on a server of
/// the test's own (scripts/lib/postgres.sh), so no other test sees the outage.
/// `/ready` reports it (503, problem+json), `/health` does not, the nodes keep
/// their leases, and the job finishes with the same ZIP as `frameflow extract`.
@Suite(.serialized, .timeLimit(.minutes(6))) struct PostgresOutageFaultTests {
    @Test func databaseRestartMidJobIsRiddenOut() async throws {
        let pgdir = "/tmp/ff-pg-outage-\(UUID().uuidString.prefix(8))"
        let port = freePort()
        let started = try FaultChecks.postgres("pg_install_if_missing && pg_start '\(pgdir)' \(port) >&2 && echo \"$DATABASE_URL\"")
        let serverURL = try #require(started.split(separator: "\n").last.map(String.init))
        defer {
            _ = try? FaultChecks.postgres("pg_stop '\(pgdir)'")
            try? FileManager.default.removeItem(atPath: pgdir)
        }
        let cluster = try LocalCluster(serverURL: serverURL)
        defer { cluster.stop() }
        try cluster.startCoordinator(extra: ["--set", "coordinator.segment_seconds=2"])
        try await cluster.waitUntilReady()
        for name in ["pg-a", "pg-b"] { try cluster.startNode(name, extra: ["--slots", "1"]) }
        try await eventually(30, "nodes online\n\(cluster.logs)") {
            let a = await cluster.nodeState("pg-a"), b = await cluster.nodeState("pg-b")
            return a == "online" && b == "online"
        }
        let api = try CurlAPI.login(port: cluster.httpPort)
        let video = try Fixtures.video(seconds: 40, name: "outage.mp4", size: "640x480")
        let created = try api.upload(video, fps: "5")
        #expect(created.status == 201, "\(created.body)")
        let id = try #require(CurlAPI.jobID(created))
        try await eventually(120, "the job is under way\n\(cluster.logs)") {
            let done = try FaultChecks.psql(cluster.databaseURL, "SELECT segments_done FROM jobs WHERE id = '\(id)'")
            return (Int(done) ?? 0) >= 1
        }
        let total = Int(try FaultChecks.psql(cluster.databaseURL, "SELECT segment_count FROM jobs WHERE id = '\(id)'")) ?? 0

        try FaultChecks.postgres("pg_stop '\(pgdir)'")
        let stoppedAt = Date()
        // During the outage: not ready (503 problem+json with a stable code), but alive.
        try await eventually(15, "/ready reports the outage") {
            try CurlAPI.call(["http://127.0.0.1:\(cluster.httpPort)/ready"]).status == 503
        }
        let ready = try CurlAPI.call(["-D", "-", "http://127.0.0.1:\(cluster.httpPort)/ready"])
        #expect(ready.body.lowercased().contains("content-type: application/problem+json"), "\(ready.body)")
        #expect(ready.body.contains("DATABASE_UNAVAILABLE"), "\(ready.body)")
        #expect(try CurlAPI.call(["http://127.0.0.1:\(cluster.httpPort)/health"]).status == 200)
        // Keep it down for a few seconds while the nodes work on.
        while Date().timeIntervalSince(stoppedAt) < 6 { try await Task.sleep(for: .milliseconds(200)) }
        #expect(try CurlAPI.call(["http://127.0.0.1:\(cluster.httpPort)/health"]).status == 200)

        try FaultChecks.postgres("pg_start '\(pgdir)' \(port) >/dev/null")
        let restartedAt = Date()
        try await eventually(30, "/ready again") {
            try CurlAPI.call(["http://127.0.0.1:\(cluster.httpPort)/ready"]).status == 200
        }
        print("measured: postgres-restart ready-again \(FaultChecks.seconds(since: restartedAt)) s after the server was back (down \(String(format: "%.1f", restartedAt.timeIntervalSince(stoppedAt))) s)")
        let status = try await api.waitUntilFinished(id)
        #expect(status == "COMPLETED", "\(status)\n\(cluster.logs)")
        print("measured: postgres-restart job-completed \(FaultChecks.seconds(since: restartedAt)) s after the server was back (\(total) segments)")
        try FaultChecks.expectSameZipAsExtract(api, id, video: video, fps: "5", dir: cluster.dir)

        // No work was lost to the outage: no lease was taken back from a node, and no node dropped.
        let lost = try FaultChecks.psql(cluster.databaseURL, """
            SELECT count(*) FROM job_events WHERE job_id = '\(id)' AND kind IN ('lease_requeued', 'lease_expired', 'fenced')
            """)
        #expect(lost == "0", "leases lost in the outage: \(lost)\n\(cluster.logs)")
        for (name, node) in cluster.nodes {
            let connects = node.output.components(separatedBy: "connected to the coordinator").count - 1
            #expect(connects <= 1, "\(name) reconnected \(connects - 1) times\n\(node.output.suffix(2000))")
        }
    }
}
