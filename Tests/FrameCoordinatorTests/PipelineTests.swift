import FrameAPI
import FrameCluster
import FrameCore
import FrameExtract
import FrameStore
import Foundation
import FrameTestSupport
import Logging
import Testing
@testable import FrameCoordinator
@testable import FrameNode

/// Jobs end to end in one process: a real coordinator (listener, scheduler,
/// PostgreSQL) and node agents that fetch bytes with READ, decode with
/// FrameMedia and stream FRAMEs back; the ZIP must equal `frameflow extract`'s.
@Suite(.serialized, .timeLimit(.minutes(5))) struct PipelineTests {
    struct Harness {
        let cluster: TestCluster
        let database: Database
        let service: CoordinatorService
        let task: Task<Void, any Error>
        let clusterPort: Int
        let httpPort: Int
        let dir: URL
        let user: UUID

        func stop() async {
            task.cancel()
            _ = try? await task.value
            await database.shutdown()
        }
    }

    /// A coordinator on loopback with its own database and directories. `archives` picks where ZIPs are
    /// stored, given the coordinator's settings (default: its results directory).
    static func makeHarness(
        extra: [String] = [], archives: (CoordinatorConfig, Logger) -> (any ArchiveStore)? = { _, _ in nil },
        sources: (CoordinatorConfig, Logger) -> (any SourceStore)? = { _, _ in nil }, databaseURL: String? = nil
    ) async throws -> Harness {
        let cluster = try TestCluster()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ff-pipe-\(UUID().uuidString)")
        // Another harness's database: a second coordinator on it.
        let url = if let databaseURL { databaseURL } else { try await TestDatabase.create() }
        let database = Database(url: url, logger: cluster.logger)
        try await database.migrate()
        let tls = cluster.coordinatorTLS
        let config = try ClusterConfig.load(file: nil, environment: [:], overrides: [
            "coordinator.http_listen=127.0.0.1:0", "coordinator.cluster_listen=127.0.0.1:0",
            "coordinator.tls.ca=\(tls.ca.path)", "coordinator.tls.cert=\(tls.certificate.path)",
            "coordinator.tls.key=\(tls.key.path)", "coordinator.segment_seconds=2",
            "coordinator.storage.uploads_dir=\(dir.path)/uploads", "coordinator.storage.spool_dir=\(dir.path)/spool",
            "coordinator.storage.results_dir=\(dir.path)/results",
        ] + extra).coordinator
        let service = CoordinatorService(config: config, database: database, logger: cluster.logger,
                                         archives: archives(config, cluster.logger), sources: sources(config, cluster.logger))
        let ports = PortBox()
        let task = Task { try await service.run(handleSignals: false) { httpPort, clusterPort in
            await ports.set(clusterPort, http: httpPort)
        } }
        try await TestCluster.eventually("coordinator listening") { await ports.port != nil }
        let user = try await UserStore(database: database).create(email: "u\(UUID().uuidString.prefix(6))@example.com",
                                                                   passwordHash: "x").id
        return Harness(cluster: cluster, database: database, service: service, task: task,
                       clusterPort: await ports.port!, httpPort: await ports.http ?? 0, dir: dir, user: user)
    }

    static func startAgent(
        _ h: Harness, name: String, slots: Int = 2, labels: String = "", runner: (any LeaseRunner)? = nil
    ) throws -> Task<Void, any Error> {
        let tls = try h.cluster.nodeTLS(name)
        let config = try ClusterConfig.load(file: nil, environment: [:], overrides: [
            "node.coordinator=127.0.0.1:\(h.clusterPort)", "node.tls.ca=\(tls.ca.path)",
            "node.tls.cert=\(tls.certificate.path)", "node.tls.key=\(tls.key.path)", "node.slots=\(slots)",
        ] + (labels.isEmpty ? [] : ["node.labels=\(labels)"])).validatedForNode()
        let agent = try NodeAgent(
            config: config, runner: runner ?? SegmentLeaseRunner(slots: slots, logger: h.cluster.logger), softwareVersion: "t",
            logger: h.cluster.logger)
        return Task { try await agent.run() }
    }

    /// Stores `video` as job `id`'s upload and ingests it.
    static func submit(
        _ h: Harness, video: URL, rate: Rational, options: OutputOptions = OutputOptions(), labels: [String: String] = [:]
    ) async throws -> JobRecord {
        let id = UUID()
        let input = h.service.layout.input(id, ext: video.pathExtension)
        try FileManager.default.createDirectory(at: input.deletingLastPathComponent(), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: video, to: input)
        let size = try FileManager.default.attributesOfItem(atPath: input.path)[.size] as! Int64
        return try await h.service.ingestor!.ingest(
            jobID: id, file: input, originalFilename: video.lastPathComponent, fileExtension: video.pathExtension,
            sizeBytes: size, owner: h.user, rate: rate, output: options, labelRequirement: labels)
    }

    static func waitForStatus(_ h: Harness, _ id: UUID, _ wanted: Set<JobStatus>, timeout: Duration = .seconds(120)) async throws -> JobRecord {
        let jobs = JobStore(database: h.database)
        let deadline = ContinuousClock.now + timeout
        var last: JobRecord?
        while ContinuousClock.now < deadline {
            last = try await jobs.get(id: id)
            if let job = last, wanted.contains(job.status) { return job }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestCluster.TimeoutError(what: "job \(id) to reach \(wanted); last \(String(describing: last?.status))")
    }

    @Test func twoNodesProduceTheSameZipAsFrameflowExtract() async throws {
        let h = try await Self.makeHarness()
        let video = try Fixtures.video(seconds: 12, name: "clip.mp4")
        let a = try Self.startAgent(h, name: "pipe-a", slots: 1)
        let b = try Self.startAgent(h, name: "pipe-b", slots: 1)
        defer { a.cancel(); b.cancel() }
        try await TestCluster.eventually("both nodes connected") {
            let live = await h.service.registry.liveNodes().map(\.name)
            return live.contains("pipe-a") && live.contains("pipe-b")
        }

        let job = try await Self.submit(h, video: video, rate: Rational(1, 1))
        #expect(job.segmentCount > 2)
        let done = try await Self.waitForStatus(h, job.id, [.completed, .failed])
        #expect(done.status == .completed, "\(String(describing: done.errorCode)): \(done.errorMessage ?? "")")
        #expect(done.frameCount == 12)

        let reference = h.dir.appendingPathComponent("reference.zip")
        _ = try FrameExtractor.run(ExtractRequest(input: video.path, rate: Rational(1, 1), output: reference))
        let ours = try Fixtures.zipEntries(h.service.layout.result(job.id))
        let theirs = try Fixtures.zipEntries(reference)
        #expect(ours.keys.sorted() == theirs.keys.sorted())
        for name in theirs.keys where name.hasPrefix("frame_") {
            #expect(ours[name] == theirs[name], "\(name) differs")
        }
        // Both nodes took part.
        let segments = try await JobStore(database: h.database).segments(jobID: job.id)
        #expect(Set(segments.compactMap(\.node)) == ["pipe-a", "pipe-b"])
        // The spool is gone after assembly.
        #expect(!FileManager.default.fileExists(atPath: h.service.layout.spoolDirectory(job.id).path))
        await h.stop()
    }

    @Test func corruptVideoFailsWithACodeAndOthersStillComplete() async throws {
        let h = try await Self.makeHarness(extra: ["coordinator.max_attempts=2"])
        let a = try Self.startAgent(h, name: "corrupt-a")
        defer { a.cancel() }
        // A valid header and index with garbage in the media data: the probe
        // accepts it (it demuxes without decoding), decoding fails.
        let good = try Fixtures.video(seconds: 6, name: "good.mp4", faststart: true)
        let bad = try Fixtures.corruptedPayload(good, name: "bad.mp4")
        let badJob = try await Self.submit(h, video: bad, rate: Rational(1, 1))
        let goodJob = try await Self.submit(h, video: good, rate: Rational(1, 1))
        let failed = try await Self.waitForStatus(h, badJob.id, [.completed, .failed])
        #expect(failed.status == .failed)
        #expect(failed.errorCode != nil)
        let ok = try await Self.waitForStatus(h, goodJob.id, [.completed, .failed])
        #expect(ok.status == .completed)
        await h.stop()
    }

    @Test func cancelStopsTheJobWithoutAZip() async throws {
        let h = try await Self.makeHarness()
        let a = try Self.startAgent(h, name: "cancel-a", slots: 1)
        defer { a.cancel() }
        let video = try Fixtures.video(seconds: 30, name: "long.mp4", size: "640x480")
        let job = try await Self.submit(h, video: video, rate: Rational(5, 1))
        _ = try await Self.waitForStatus(h, job.id, [.processing])
        let outcome = try await h.service.scheduler!.cancel(jobID: job.id)
        #expect(outcome.job.status == .cancelled)
        try await Task.sleep(for: .seconds(1))
        let after = try await JobStore(database: h.database).get(id: job.id)
        #expect(after?.status == .cancelled)
        #expect(!FileManager.default.fileExists(atPath: h.service.layout.result(job.id).path))
        #expect(!FileManager.default.fileExists(atPath: h.service.layout.spoolDirectory(job.id).path))
        await h.stop()
    }
}

actor PortBox {
    var port: Int?
    var http: Int?
    func set(_ p: Int, http: Int? = nil) {
        port = p
        self.http = http
    }
}

@Suite(.serialized, .timeLimit(.minutes(3))) struct RetentionTests {
    @Test func expiredJobsLoseTheirFilesAndBecomeExpired() async throws {
        let h = try await PipelineTests.makeHarness()
        let a = try PipelineTests.startAgent(h, name: "retain-a")
        defer { a.cancel() }
        let video = try Fixtures.video(seconds: 6, name: "retain.mp4")
        let job = try await PipelineTests.submit(h, video: video, rate: Rational(1, 1))
        _ = try await PipelineTests.waitForStatus(h, job.id, [.completed])
        let layout = h.service.layout
        #expect(FileManager.default.fileExists(atPath: layout.result(job.id).path))
        let sweeper = try #require(h.service.sweeper)
        // Not due yet: nothing happens.
        #expect(try await sweeper.sweep().isEmpty)
        try await JobStore(database: h.database).setExpiry(id: job.id, at: Date().addingTimeInterval(-1))
        #expect(try await sweeper.sweep() == [job.id])
        #expect(try await JobStore(database: h.database).get(id: job.id)?.status == .expired)
        #expect(!FileManager.default.fileExists(atPath: layout.result(job.id).path))
        #expect(!FileManager.default.fileExists(atPath: layout.uploadDirectory(job.id).path))
        await h.stop()
    }
}
