import FrameClient
import FrameObjectStore
import Foundation
import FrameTestSupport
import Testing

/// The scale-out shape with no shared disk (issue 14's fault test): two coordinators on one
/// PostgreSQL and one object store, each with its OWN data directories; sources in the bucket
/// (`uploads: s3`), archives built from segment slices in the bucket (`kind: s3`). Three nodes know
/// both coordinators; two read their sources straight from the store (`node_reads: direct`), one
/// (`node.direct_reads: false`) through its coordinator, which must then fetch from the store too.
/// The coordinator the uploads went through is SIGKILLed mid-job with one of its nodes: every job
/// completes exactly once with the ZIP `frameflow extract` makes, downloaded from the survivor
/// (a presigned redirect to the store), and nothing on the dead one's disk is needed.
@Suite(.serialized, .timeLimit(.minutes(8))) struct ObjectStoreFailoverFaultTests {
    /// What both coordinators share: JWT secret, segment length, the bucket.
    static func settings(_ store: S3Configuration) -> [String] {
        ["--set", "coordinator.segment_seconds=2", "--set", "coordinator.jwt_secret=fault-tests-secret-0123456789abcdef"]
            + S3LiveStore.coordinatorSettings(store)
            + ["--set", "coordinator.storage.s3.uploads=s3", "--set", "coordinator.storage.s3.node_reads=direct"]
    }

    /// A coordinator's own data directories under `dir/<name>` (later `--set`s win over LocalCluster's shared ones).
    static func ownDisk(_ cluster: LocalCluster, _ name: String) -> [String] {
        ["uploads", "spool", "results"].flatMap { kind in
            ["--set", "coordinator.storage.\(kind)_dir=\(cluster.dir.appendingPathComponent("\(name)/\(kind)").path)"]
        }
    }

    @Test func sigkillOfTheUploadCoordinatorWithOnlyTheObjectStoreShared() async throws {
        guard let store = try await S3LiveStore.client("ObjectStoreFailoverFaultTests", stem: "failover", prefix: "ff/",
                                                       requestTimeout: .seconds(120)) else { return }
        let shared = Self.settings(store.configuration)

        let cluster = try LocalCluster()
        defer { cluster.stop() }
        let two = try await FaultChecks.startTwoCoordinators(cluster, settingsA: shared + Self.ownDisk(cluster, "a"), settingsB: shared + Self.ownDisk(cluster, "b"))
        let (a, b, idA, idB, adminB) = (two.a, two.b, two.idA, two.idB, two.adminB)
        let (httpA, clusterA, httpB, clusterB) = (two.httpA, two.clusterA, two.httpB, two.clusterB)

        // mc-1 and mc-2 prefer A, mc-3 prefers B; each knows both. mc-2 reads through its
        // coordinator (version 1 LEASEs): after the kill its READs go to B, which has no copy.
        let toA = "127.0.0.1:\(clusterA),127.0.0.1:\(clusterB)", toB = "127.0.0.1:\(clusterB),127.0.0.1:\(clusterA)"
        let names = ["mc-1", "mc-2", "mc-3"]
        let extras = [[], ["--set", "node.direct_reads=false"], []]
        for (name, (list, extra)) in zip(names, zip([toA, toA, toB], extras)) {
            try cluster.startNode(name, extra: ["--slots", "1"] + extra, coordinators: list)
        }
        try await eventually(30, "nodes online\n\(Self.logs(cluster, a, b))") {
            let nodes = (try? await adminB.nodes()) ?? []
            return names.allSatisfy { n in nodes.contains { $0.name == n && $0.state == "online" } }
        }

        // Upload through A: the sources go to the bucket, A's staging copies away.
        let apiA = try CurlAPI.login(port: httpA)
        let videos = [try Fixtures.video(seconds: 40, name: "s3-failover-1.mp4", size: "640x480"),
                      try Fixtures.video(seconds: 20, name: "s3-failover-2.mp4", size: "640x480"),
                      try Fixtures.video(seconds: 20, name: "s3-failover-3.mp4", size: "320x240")]
        var ids: [String] = []
        for video in videos {
            let answer = try apiA.upload(video, fps: "10")
            #expect(answer.status == 201, "\(answer.body)")
            ids.append(try #require(CurlAPI.jobID(answer)))
        }
        for id in ids {
            #expect(try await store.headObject("uploads/\(id)/input.mp4") != nil, "job \(id)'s source is not in the bucket")
        }
        // Mid-job: segments done, and leases held through A, one of them by mc-1 (killed with A).
        let kill = try await FaultChecks.killMidJob(
            databaseURL: cluster.databaseURL, coordinator: a, id: idA, node: cluster.nodes["mc-1"], nodeName: "mc-1",
            logs: { Self.logs(cluster, a, b) })
        let (killedAt, heldViaA, doneAtKill, total) = (kill.killedAt, kill.heldViaKilled, kill.doneAtKill, kill.total)
        // From here on nothing on A's disk may be read: it is another machine's, and gone.
        try FileManager.default.moveItem(
            at: cluster.dir.appendingPathComponent("a"), to: cluster.dir.appendingPathComponent("a-dead"))

        let (leasesBack, buried) = try await FaultChecks.awaitTakeover(
            databaseURL: cluster.databaseURL, dead: idA, survivor: idB, since: killedAt, logs: { Self.logs(cluster, a, b) })

        let apiB = CurlAPI(base: "http://127.0.0.1:\(httpB)", token: apiA.token)
        for id in ids {
            let status = try await apiB.waitUntilFinished(id, timeout: 240)
            #expect(status == "COMPLETED", "job \(id): \(status)\n\(Self.logs(cluster, a, b))")
        }
        let completed = Date().timeIntervalSince(killedAt)
        print(String(format: "measured: object-store failover (no shared disk): leases-resumed-or-requeued %.2f s, dead-coordinator-taken-over %.2f s, all-jobs-completed %.2f s after the SIGKILL (at the kill: %@ of %@ segments done, %@ leased through the killed coordinator)",
                     leasesBack, buried, completed, doneAtKill, total, heldViaA))
        #expect(leasesBack < 30, "took longer than the lease TTL: the reaper did it, not the take-over")

        // Downloads from the survivor: a presigned redirect to the store (followed), whose
        // ZIP has exactly `frameflow extract`'s entries.
        for (id, video) in zip(ids, videos) {
            let head = try CurlAPI.call(["-o", "/dev/null", "-D", "-", "\(apiB.base)/videos/\(id)/download"] + apiB.auth)
            #expect(head.status == 302, "download of \(id): \(head.status)")
            let location = head.body.split(separator: "\r\n").first { $0.lowercased().hasPrefix("location:") } ?? ""
            #expect(location.contains(store.configuration.endpoint.absoluteString) && location.contains("/\(store.configuration.bucket)/ff/archives/\(id).zip"), "\(location)")
            try FaultChecks.expectSameZipAsExtract(apiB, id, video: video, fps: "10", dir: cluster.dir)
        }

        // Exactly once: each segment accepted once and never after its lease was taken back;
        // each job assembled (completed) once, by the survivor.
        try FaultChecks.expectEachSegmentAcceptedOnce(databaseURL: cluster.databaseURL, total: total)
        let completions = try FaultChecks.psql(cluster.databaseURL, """
            SELECT count(*) FROM job_events WHERE kind = 'status' AND detail LIKE '%->COMPLETED'
            """)
        #expect(completions == "\(ids.count)", "completions: \(completions)")
        let takenOver = try FaultChecks.psql(cluster.databaseURL, """
            SELECT count(*) FROM job_events WHERE kind = 'lease_requeued' AND node = 'mc-1' AND reason LIKE 'coordinator % stopped renewing%'
            """)
        #expect(takenOver != "0", "mc-1's lease was not requeued by the take-over")
        // mc-2 read through a coordinator, and after the kill that was B, from the store.
        let mc2 = cluster.nodes["mc-2"]?.output ?? ""
        #expect(mc2.contains("\"protocol\":\"1\"") || mc2.contains("protocol=1"), "mc-2 announced version 1 only")
        // The store holds the archives and nothing else of the jobs: slices deleted after assembly.
        try await eventually(30, "slices deleted") { try await store.listObjects(prefix: "parts/").objects.isEmpty }
        for id in ids { #expect(try await store.headObject("archives/\(id).zip") != nil) }
        // The survivor's own disk holds nothing of the jobs: no staging copy, no spooled frame.
        let diskB = cluster.dir.appendingPathComponent("b")
        #expect(FaultChecks.entries(diskB.appendingPathComponent("uploads")).isEmpty)
        #expect(FaultChecks.entries(diskB.appendingPathComponent("spool")).isEmpty,
                "B's spool: \(FaultChecks.entries(diskB.appendingPathComponent("spool")))")
        let resumed = try FaultChecks.psql(cluster.databaseURL, "SELECT count(*) FROM job_events WHERE kind = 'lease_resumed'")
        print("measured: object-store failover leases resumed on the survivor: \(resumed)")
    }

    static func logs(_ cluster: LocalCluster, _ a: ChildProcess, _ b: ChildProcess) -> String {
        "--- coordinator A\n\(a.output.suffix(3000))\n--- coordinator B\n\(b.output.suffix(3000))\n" + cluster.logs
    }
}
