import FrameClient
import Foundation
import FrameTestSupport
import Testing

/// Two coordinators on one PostgreSQL sharing one data directory, three nodes
/// that know both: the coordinator an upload went through is SIGKILLed mid-job,
/// and with it one of its nodes (so that one lease has nobody to resume it).
/// The survivor takes back (or its nodes resume) the dead one's leases, every
/// job completes with the ZIP `frameflow extract` makes, downloads work from
/// the survivor, every segment is accepted and every job assembled exactly once.
@Suite(.serialized, .timeLimit(.minutes(8))) struct MultiCoordinatorFaultTests {
    /// One JWT secret for both: a token from one coordinator is good on the other.
    static let settings = [
        "--set", "coordinator.segment_seconds=2", "--set", "coordinator.jwt_secret=fault-tests-secret-0123456789abcdef",
    ]

    @Test func sigkillOfOneCoordinatorMidJobIsTakenOverByTheOther() async throws {
        let cluster = try LocalCluster()
        defer { cluster.stop() }
        let two = try await FaultChecks.startTwoCoordinators(cluster, settingsA: Self.settings, settingsB: Self.settings)
        let (a, b, idA, idB, adminB) = (two.a, two.b, two.idA, two.idB, two.adminB)
        let (httpA, clusterA, httpB, clusterB) = (two.httpA, two.clusterA, two.httpB, two.clusterB)

        // Two nodes prefer A, one prefers B; each knows both.
        let toA = "127.0.0.1:\(clusterA),127.0.0.1:\(clusterB)", toB = "127.0.0.1:\(clusterB),127.0.0.1:\(clusterA)"
        let names = ["mc-1", "mc-2", "mc-3"]
        for (name, list) in zip(names, [toA, toA, toB]) {
            try cluster.startNode(name, extra: ["--slots", "1"], coordinators: list)
        }
        try await eventually(30, "nodes online\n\(Self.logs(cluster, a, b))") {
            let nodes = (try? await adminB.nodes()) ?? []
            return names.allSatisfy { n in nodes.contains { $0.name == n && $0.state == "online" } }
        }
        let onA = try FaultChecks.psql(cluster.databaseURL, "SELECT count(*) FROM nodes WHERE coordinator = '\(idA)'")
        #expect(onA == "2", "nodes connected to A: \(onA)")

        // Upload through A.
        let apiA = try CurlAPI.login(port: httpA)
        let videos = [try Fixtures.video(seconds: 40, name: "multi-1.mp4", size: "640x480"),
                      try Fixtures.video(seconds: 20, name: "multi-2.mp4", size: "640x480")]
        var ids: [String] = []
        for video in videos {
            let answer = try apiA.upload(video, fps: "10")
            #expect(answer.status == 201, "\(answer.body)")
            ids.append(try #require(CurlAPI.jobID(answer)))
        }
        // Mid-job: segments done, and leases held through A, one of them by mc-1, which dies with
        // A: its lease is not resumed by anyone, B's take-over must requeue it.
        let kill = try await FaultChecks.killMidJob(
            databaseURL: cluster.databaseURL, coordinator: a, id: idA, node: cluster.nodes["mc-1"], nodeName: "mc-1",
            logs: { Self.logs(cluster, a, b) })
        let (killedAt, heldViaA, doneAtKill, total) = (kill.killedAt, kill.heldViaKilled, kill.doneAtKill, kill.total)
        // Failover: no lease is held through A any more, and A is buried (its liveness row
        // expired and B deleted it after the take-over).
        let (leasesBack, buried) = try await FaultChecks.awaitTakeover(
            databaseURL: cluster.databaseURL, dead: idA, survivor: idB, since: killedAt, logs: { Self.logs(cluster, a, b) })
        try await eventually(30, "the surviving nodes on B\n\(Self.logs(cluster, a, b))") {
            try FaultChecks.psql(cluster.databaseURL, "SELECT count(*) FROM nodes WHERE state = 'online' AND coordinator = '\(idB)'") == "2"
        }
        let takenOver = try FaultChecks.psql(cluster.databaseURL, """
            SELECT count(*) FROM job_events WHERE kind = 'lease_requeued' AND node = 'mc-1' AND reason LIKE 'coordinator % stopped renewing%'
            """)
        #expect(takenOver != "0", "mc-1's lease was not requeued by the take-over")
        print(String(format: "measured: multi-coordinator sigkill leases-resumed-or-requeued %.2f s, dead-coordinator-taken-over %.2f s (at the kill: %@ of %@ segments done, %@ leased through the killed coordinator)",
                     leasesBack, buried, doneAtKill, total, heldViaA))
        #expect(leasesBack < 30, "took longer than the lease TTL: the reaper did it, not the take-over")

        // The survivor finishes every job and serves the downloads.
        let apiB = CurlAPI(base: "http://127.0.0.1:\(httpB)", token: apiA.token)
        for id in ids {
            let status = try await apiB.waitUntilFinished(id, timeout: 240)
            #expect(status == "COMPLETED", "job \(id): \(status)\n\(Self.logs(cluster, a, b))")
        }
        print("measured: multi-coordinator sigkill all-jobs-completed \(FaultChecks.seconds(since: killedAt)) s")
        for (id, video) in zip(ids, videos) {
            try FaultChecks.expectSameZipAsExtract(apiB, id, video: video, fps: "10", dir: cluster.dir)
        }
        // Exactly once: each segment accepted once and never after its lease was taken back;
        // each job completed (assembled) once.
        try FaultChecks.expectEachSegmentAcceptedOnce(databaseURL: cluster.databaseURL, total: total)
        let completions = try FaultChecks.psql(cluster.databaseURL, """
            SELECT count(*) FROM job_events WHERE kind = 'status' AND detail LIKE '%->COMPLETED'
            """)
        #expect(completions == "\(ids.count)", "completions: \(completions)")
        let resumed = try FaultChecks.psql(cluster.databaseURL, "SELECT count(*) FROM job_events WHERE kind = 'lease_resumed'")
        print("measured: multi-coordinator sigkill leases resumed on the survivor: \(resumed)")
        #expect(FaultChecks.entries(cluster.dir.appendingPathComponent("data/spool")).isEmpty)
    }

    static func logs(_ cluster: LocalCluster, _ a: ChildProcess, _ b: ChildProcess) -> String {
        "--- coordinator A\n\(a.output.suffix(3000))\n--- coordinator B\n\(b.output.suffix(3000))\n" + cluster.logs
    }
}
