import FrameArchive
import FrameCore
import FrameExtract
import FrameStore
import Foundation
import FrameTestSupport
import Logging
import NIOCore
import Testing
@testable import FrameCoordinator
@testable import FrameObjectStore

/// Archives assembled from segment slices (`storage.kind: s3`, docs/distributed-assembly.md)
/// against the real store: slices written by two coordinators' writers, assembled by a third;
/// an abandoned assembly finished by another claimer; a store that is down while slices are
/// written; and the part plan's 5 MiB rule.
@Suite(.serialized, .timeLimit(.minutes(5))) struct SliceAssemblyTests {
    static func client(_ stem: String, port: Int? = nil) async throws -> S3Client? {
        try await S3LiveStore.client("SliceAssemblyTests", stem: "slice-\(stem)", prefix: "cluster/", port: port,
                                     requestTimeout: .seconds(10))
    }

    static var logger: Logger {
        var logger = Logger(label: "test.slices")
        logger.logLevel = .warning
        return logger
    }

    /// A job planned from a real video whose segments are all done, their slices written from
    /// `frameflow extract`'s frames by two writers (two coordinators' SliceArchivers) that took
    /// turns; returns what a third coordinator needs, and the reference archive.
    struct Setup {
        let database: Database
        let job: JobRecord
        let reference: URL
        let dir: URL
        let keys: [String]
    }

    static func finishedJobWithSlices(_ client: S3Client, video: URL) async throws -> Setup {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ff-slices-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let database = Database(url: try await TestDatabase.create(), logger: logger)
        try await database.migrate()
        let owner = try await UserStore(database: database).create(email: "s\(UUID().uuidString.prefix(6))@example.com", passwordHash: "x").id
        let ingestor = MediaIngestor(database: database, segmentSeconds: 2, maxAttempts: 3)
        let size = try FileManager.default.attributesOfItem(atPath: video.path)[.size] as! Int64
        let job = try await ingestor.ingest(
            jobID: UUID(), file: video, originalFilename: video.lastPathComponent, fileExtension: video.pathExtension,
            sizeBytes: size, owner: owner, rate: Rational(1, 1), output: OutputOptions())

        // The frames every node would send: `frameflow extract`'s, by sample, with their times.
        let reference = dir.appendingPathComponent("reference.zip")
        _ = try FrameExtractor.run(ExtractRequest(input: video.path, rate: Rational(1, 1), output: reference))
        let manifest = try JSONDecoder().decode(ArchiveManifest.self, from: try #require(try Fixtures.zipEntries(reference)["manifest.json"]))
        let spool = dir.appendingPathComponent("spool")
        try FileManager.default.createDirectory(at: spool, withIntermediateDirectories: true)
        let entries = try Fixtures.zipEntries(reference)
        for (i, frame) in manifest.frames.enumerated() {
            try entries[frame.name]!.write(to: spool.appendingPathComponent("\(i).png"))
        }

        let writers = [SliceArchiver(client: client, partSize: 5 << 20, logger: logger),
                       SliceArchiver(client: client, partSize: 5 << 20, logger: logger)]
        let nodes = NodeStore(database: database)
        let leases = LeaseStore(database: database)
        for n in ["node-1", "node-2"] {
            _ = try await nodes.register(name: n, softwareVersion: "t", slots: 1, labels: [:], address: "127.0.0.1:1")
        }
        var keys: [String] = []
        var turn = 0
        while true {
            let node = "node-\(turn % 2 + 1)"
            guard let grant = try await leases.claim(node: node, limit: 1).first else { break }
            let spec = grant.spec
            var samples: [UInt32: Double] = [:]
            for s in spec.firstSample..<(spec.firstSample + spec.sampleCount) { samples[s] = manifest.frames[Int(s)].seconds }
            let slice = try await writers[turn % 2].writeSlice(grant.ref, total: Int(job.frameCount), format: .png, samples: samples) {
                spool.appendingPathComponent("\($0).png")
            }
            keys.append(slice.key)
            guard case .accepted = try await leases.complete(grant.ref, node: node, slice: slice) else {
                Issue.record("segment \(grant.ref.segment) not accepted"); break
            }
            turn += 1
        }
        return Setup(database: database, job: try #require(try await JobStore(database: database).get(id: job.id)),
                     reference: reference, dir: dir, keys: keys)
    }

    /// A coordinator that only assembles (no listener): its scheduler, with the slices' store.
    static func assembler(_ setup: Setup, client: S3Client, id: String) -> LeaseScheduler {
        let layout = StorageLayout(uploads: setup.dir.appendingPathComponent("u-\(id)"), spool: setup.dir.appendingPathComponent("s-\(id)"),
                                   results: setup.dir.appendingPathComponent("r-\(id)"))
        return LeaseScheduler(
            database: setup.database, layout: layout, leaseTTL: .seconds(30), retentionDays: 1, logger: logger,
            archives: S3ArchiveStore(client: client, resultsDirectory: layout.results, partSize: 5 << 20, downloads: .presigned, logger: logger),
            slices: SliceArchiver(client: client, partSize: 5 << 20, logger: logger), coordinatorID: id)
    }

    /// The archive in the bucket has `frameflow extract`'s entries, and the slices are gone.
    static func expectArchiveEqualsExtract(_ setup: Setup, client: S3Client) async throws {
        let zip = try await client.getObject(S3ArchiveStore.key(setup.job.id), limit: 256 << 20)
        let ours = setup.dir.appendingPathComponent("assembled-\(UUID().uuidString.prefix(4)).zip")
        try Data(zip.readableBytesView).write(to: ours)
        let a = try Fixtures.zipEntries(ours)
        let b = try Fixtures.zipEntries(setup.reference)
        #expect(a.keys.sorted() == b.keys.sorted())
        for name in b.keys where name.hasPrefix("frame_") { #expect(a[name] == b[name], "\(name) differs") }
        let mine = try JSONDecoder().decode(ArchiveManifest.self, from: try #require(a["manifest.json"]))
        let theirs = try JSONDecoder().decode(ArchiveManifest.self, from: try #require(b["manifest.json"]))
        #expect(mine.frames == theirs.frames)
        // The whole archive passes Info-ZIP's test (every CRC).
        _ = try Fixtures.run("/usr/bin/unzip", ["-tqq", ours.path])
        #expect(try await client.listObjects(prefix: "parts/").objects.isEmpty, "slices are deleted after COMPLETED")
    }

    @Test func slicesWrittenByTwoCoordinatorsAreAssembledByAThirdLikeFrameflowExtract() async throws {
        guard let client = try await Self.client("three") else { return }
        let video = try Fixtures.video(seconds: 8, name: "three.mp4")
        let setup = try await Self.finishedJobWithSlices(client, video: video)
        defer { try? FileManager.default.removeItem(at: setup.dir) }
        #expect(setup.job.segmentCount >= 3)
        #expect(setup.keys.count == setup.job.segmentCount)
        for key in setup.keys { #expect(try await client.headObject(key) != nil) }

        await Self.assembler(setup, client: client, id: "coordinator-3").assembleFinishedJobs()
        let jobs = JobStore(database: setup.database)
        let done = try #require(try await jobs.get(id: setup.job.id))
        #expect(done.status == .completed, "\(String(describing: done.errorCode)): \(done.errorMessage ?? "")")
        try await Self.expectArchiveEqualsExtract(setup, client: client)
        let claims = try await jobs.events(jobID: setup.job.id).filter { $0.kind == .assemblyClaimed }
        #expect(claims.map(\.node) == ["coordinator-3"])
    }

    @Test func anAbandonedAssemblyIsFinishedByAnotherClaimerAndItsUploadAborted() async throws {
        guard let client = try await Self.client("abandon") else { return }
        let video = try Fixtures.video(seconds: 6, name: "abandon.mp4")
        let setup = try await Self.finishedJobWithSlices(client, video: video)
        defer { try? FileManager.default.removeItem(at: setup.dir) }
        let jobs = JobStore(database: setup.database)
        // A coordinator claims the assembly, starts its upload, sends a part, and dies.
        // A claim of 6 s: long enough that the survivor's first look (under load) sees it live.
        _ = try #require(try await jobs.claimAssembly(id: setup.job.id, claimer: "dead", ttl: .seconds(6)))
        let key = S3ArchiveStore.key(setup.job.id)
        let upload = try await client.createMultipartUpload(key)
        _ = try await client.uploadPart(key, uploadID: upload, partNumber: 1, body: ByteBuffer(string: "half an archive"))
        #expect(try await jobs.renewAssemblyClaim(id: setup.job.id, claimer: "dead", ttl: .seconds(6), uploadID: upload))
        let renewed = ContinuousClock.now

        let survivor = Self.assembler(setup, client: client, id: "survivor")
        // While the claim is live, nobody else assembles.
        await survivor.assembleFinishedJobs()
        #expect(try await jobs.get(id: setup.job.id)?.status == .processing)
        try await Task.sleep(until: renewed + .milliseconds(6500))
        await survivor.assembleFinishedJobs()
        let done = try #require(try await jobs.get(id: setup.job.id))
        #expect(done.status == .completed, "\(String(describing: done.errorCode)): \(done.errorMessage ?? "")")
        try await Self.expectArchiveEqualsExtract(setup, client: client)
        // The dead claimer's upload was aborted: it takes no more parts.
        await #expect(throws: S3Error.self) {
            _ = try await client.uploadPart(key, uploadID: upload, partNumber: 2, body: ByteBuffer(string: "more"))
        }
        let claims = try await jobs.events(jobID: setup.job.id).filter { $0.kind == .assemblyClaimed }
        #expect(claims.map(\.node) == ["dead", "survivor"])
    }

    @Test func aStoreDownWhileSlicesAreWrittenKeepsTheSegmentsLeasedThenTheJobCompletes() async throws {
        guard let direct = try await Self.client("down") else { return }
        let target = S3LiveStore.url!.port!
        let proxy = try TCPProxy(targetPort: target)
        defer { proxy.stop() }
        // The same bucket through the proxy, which is cut before any slice is written.
        let client = try S3Client(configuration: {
            var c = direct.configuration
            var url = URLComponents(url: c.endpoint, resolvingAgainstBaseURL: false)!
            url.port = proxy.port
            c.endpoint = url.url!
            return c
        }())
        proxy.cut()
        let pipe = try await PipelineTests.makeHarness { config, logger in
            S3ArchiveStore(client: client, resultsDirectory: config.resultsDirectory, partSize: 5 << 20, downloads: .presigned, logger: logger)
        }
        let a = try PipelineTests.startAgent(pipe, name: "down-a", slots: 2)
        defer { a.cancel() }
        let video = try Fixtures.video(seconds: 6, name: "down.mp4")
        let job = try await PipelineTests.submit(pipe, video: video, rate: Rational(1, 1))
        let jobs = JobStore(database: pipe.database)
        // Every frame arrives, but no slice can be written: no segment is done, none is lost.
        try await TestCluster.eventually(timeout: .seconds(60), "the node sent every segment") {
            let events = try await jobs.events(jobID: job.id)
            return events.filter { $0.kind == .leaseGranted }.count >= job.segmentCount
        }
        try await Task.sleep(for: .seconds(3))
        let waiting = try await jobs.segments(jobID: job.id)
        #expect(waiting.allSatisfy { $0.state != .done }, "a segment was recorded done without its slice")
        #expect(try await jobs.get(id: job.id)?.status == .processing)

        proxy.resume()
        let done = try await PipelineTests.waitForStatus(pipe, job.id, [.completed, .failed], timeout: .seconds(90))
        #expect(done.status == .completed, "\(String(describing: done.errorCode)): \(done.errorMessage ?? "")")
        // Each segment was leased (decoded) once: the outage cost a wait, not a redo.
        let grants = try await jobs.events(jobID: job.id).filter { $0.kind == .leaseGranted }
        #expect(grants.count == job.segmentCount)
        #expect(try await jobs.segments(jobID: job.id).allSatisfy { $0.state == .done && $0.epoch == 1 })
        let reference = pipe.dir.appendingPathComponent("reference.zip")
        _ = try FrameExtractor.run(ExtractRequest(input: video.path, rate: Rational(1, 1), output: reference))
        let zip = try await direct.getObject(S3ArchiveStore.key(job.id), limit: 256 << 20)
        let ours = pipe.dir.appendingPathComponent("down.zip")
        try Data(zip.readableBytesView).write(to: ours)
        let theirs = try Fixtures.zipEntries(reference)
        let mine = try Fixtures.zipEntries(ours)
        #expect(mine.keys.sorted() == theirs.keys.sorted())
        for name in theirs.keys where name.hasPrefix("frame_") { #expect(mine[name] == theirs[name], "\(name) differs") }
        await pipe.stop()
    }

    @Test func anAssemblyWhileTheStoreIsDownIsPostponedAndItsClaimFreedThenItCompletes() async throws {
        guard let direct = try await Self.client("postpone") else { return }
        let video = try Fixtures.video(seconds: 4, name: "postpone.mp4")
        let setup = try await Self.finishedJobWithSlices(direct, video: video)
        defer { try? FileManager.default.removeItem(at: setup.dir) }
        let proxy = try TCPProxy(targetPort: direct.configuration.endpoint.port ?? 80)
        defer { proxy.stop() }
        var configuration = direct.configuration
        var url = URLComponents(url: configuration.endpoint, resolvingAgainstBaseURL: false)!
        url.port = proxy.port
        configuration.endpoint = url.url!
        let client = try S3Client(configuration: configuration)
        proxy.cut()
        let assembler = Self.assembler(setup, client: client, id: "while-down")
        await assembler.assembleFinishedJobs()
        let jobs = JobStore(database: setup.database)
        #expect(try await jobs.get(id: setup.job.id)?.status == .processing, "an unreachable store must not fail the job")
        // The claim was given up: another coordinator could take the job at once.
        let other = try #require(try await jobs.claimAssembly(id: setup.job.id, claimer: "other", ttl: .milliseconds(1)))
        #expect(other.tookOverFrom == nil)
        try await Task.sleep(for: .milliseconds(50))
        proxy.resume()
        await assembler.assembleFinishedJobs()
        #expect(try await jobs.get(id: setup.job.id)?.status == .completed)
        try await Self.expectArchiveEqualsExtract(setup, client: direct)
    }

    /// Slices of 6, 1 and 12 MiB: the first copied whole by the store, the small one topped up
    /// with the head of the third (a ranged GET), the rest of the third copied by range, then the
    /// tail: four parts, read back by unzip and zipfile with every frame's bytes.
    @Test func largeSlicesAreCopiedByTheStoreWholeAndByRange() async throws {
        guard let client = try await Self.client("large") else { return }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ff-large-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let database = Database(url: try await TestDatabase.create(), logger: Self.logger)
        try await database.migrate()
        let owner = try await UserStore(database: database).create(email: "l\(UUID().uuidString.prefix(6))@example.com", passwordHash: "x").id
        let mib = 1 << 20
        // Frames per segment and their sizes: 3 x 2 MiB, 1 x 1 MiB, 4 x 3 MiB.
        let plan: [[Int]] = [[2 * mib, 2 * mib, 2 * mib], [mib], [3 * mib, 3 * mib, 3 * mib, 3 * mib]]
        var specs: [SegmentSpec] = []
        var first: UInt32 = 0
        for (i, frames) in plan.enumerated() {
            specs.append(SegmentSpec(
                index: UInt32(i), streamIndex: 0, timeBase: Rational(1, 1000), decodeStartPTS: Int64(i) * 5000,
                startPTS: Int64(i) * 5000, endPTS: Int64(i + 1) * 5000, firstSample: first, sampleCount: UInt32(frames.count),
                rate: Rational(1, 1), originMicros: 0, keyframes: [Keyframe(pts: Int64(i) * 5000, pos: 0)]))
            first += UInt32(frames.count)
        }
        let jobs = JobStore(database: database)
        let job = try await jobs.create(NewJob(
            userID: owner, originalFilename: "big.mp4", ext: "mp4", sizeBytes: 1, fps: Rational(1, 1),
            output: OutputOptions(format: .png), durationSeconds: 8, segments: specs))
        var bytes: [UInt32: Data] = [:]
        var sample: UInt32 = 0
        for frames in plan {
            for size in frames {
                // Distinct per frame and cheap to make in a debug build: a fill byte and a stamped head.
                var data = Data(repeating: UInt8(truncatingIfNeeded: 0x41 &+ sample), count: size)
                data.replaceSubrange(0..<8, with: withUnsafeBytes(of: UInt64(sample) &* 0x9E37_79B9_7F4A_7C15) { Data($0) })
                bytes[sample] = data
                try bytes[sample]!.write(to: dir.appendingPathComponent("\(sample)"))
                sample += 1
            }
        }
        _ = try await NodeStore(database: database).register(name: "n", softwareVersion: "t", slots: 3, labels: [:], address: "127.0.0.1:1")
        let leases = LeaseStore(database: database)
        let writer = SliceArchiver(client: client, partSize: 5 << 20, logger: Self.logger)
        for grant in try await leases.claim(node: "n", limit: 3) {
            var samples: [UInt32: Double] = [:]
            for s in grant.spec.firstSample..<(grant.spec.firstSample + grant.spec.sampleCount) { samples[s] = Double(s) }
            let slice = try await writer.writeSlice(grant.ref, total: Int(job.frameCount), format: .png, samples: samples) {
                dir.appendingPathComponent("\($0)")
            }
            guard case .accepted = try await leases.complete(grant.ref, node: "n", slice: slice) else { Issue.record("not accepted"); return }
        }
        let setup = Setup(database: database, job: job, reference: dir, dir: dir, keys: [])
        await Self.assembler(setup, client: client, id: "big").assembleFinishedJobs()
        #expect(try await jobs.get(id: job.id)?.status == .completed)
        let head = try #require(try await client.headObject(S3ArchiveStore.key(job.id)))
        #expect(head.etag.hasSuffix("-4\""), "four parts: copy, topped-up run, ranged copy, tail (\(head.etag))")
        let zip = try await client.getObject(S3ArchiveStore.key(job.id), limit: 64 << 20)
        let file = dir.appendingPathComponent("big.zip")
        try Data(zip.readableBytesView).write(to: file)
        _ = try Fixtures.run("/usr/bin/unzip", ["-tqq", file.path])
        let entries = try Fixtures.zipEntries(file)
        #expect(entries.count == bytes.count + 1)
        for (s, data) in bytes {
            #expect(entries[FrameNaming.name(sampleIndex: Int(s), total: bytes.count, format: .png)] == data)
        }
        #expect(try await client.listObjects(prefix: "parts/").objects.isEmpty)
    }

    @Test func retentionDeletesTheSlicesOfAJobThatWasNeverAssembled() async throws {
        guard let client = try await Self.client("retain") else { return }
        let video = try Fixtures.video(seconds: 4, name: "retain.mp4")
        let setup = try await Self.finishedJobWithSlices(client, video: video)
        defer { try? FileManager.default.removeItem(at: setup.dir) }
        _ = try await JobStore(database: setup.database).cancel(id: setup.job.id)
        #expect(try await client.listObjects(prefix: "parts/").objects.count == setup.keys.count)
        let store = S3ArchiveStore(client: client, resultsDirectory: setup.dir, partSize: 5 << 20, downloads: .presigned, logger: Self.logger)
        try await store.delete(job: setup.job.id)
        #expect(try await client.listObjects(prefix: "parts/").objects.isEmpty)
    }

    @Test func thePartPlanKeepsEveryPartButTheLastAtFiveMiBAndCopiesLargeSlices() {
        let m: Int64 = 5 << 20
        func check(_ lengths: [Int64], maximum: Int64 = 5 << 30) -> [AssemblyPart] {
            let plan = AssemblyPlan.parts(lengths: lengths, minimum: m, maximum: maximum)
            // Every byte of every slice exactly once, in order.
            var covered: [(Int, Range<Int64>)] = []
            for part in plan {
                switch part {
                case .copy(let s, let r): covered.append((s, r))
                case .upload(let pieces, _): covered += pieces.map { ($0.slice, $0.range) }
                }
            }
            var expected: [(Int, Range<Int64>)] = []
            for (i, l) in lengths.enumerated() where l > 0 { expected.append((i, 0..<l)) }
            var merged: [(Int, Range<Int64>)] = []
            for (s, r) in covered {
                if let last = merged.last, last.0 == s, last.1.upperBound == r.lowerBound {
                    merged[merged.count - 1] = (s, last.1.lowerBound..<r.upperBound)
                } else { merged.append((s, r)) }
            }
            #expect(merged.map(\.0) == expected.map(\.0) && merged.map(\.1) == expected.map(\.1))
            for part in plan.dropLast() {
                switch part {
                case .copy(_, let r): #expect(r.count >= m && r.count <= maximum)
                case .upload(let pieces, let tail):
                    #expect(!tail && pieces.map(\.range.count).reduce(0, +) >= m)
                    #expect(pieces.map(\.range.count).reduce(0, +) < 2 * m, "bounded memory")
                }
            }
            if case .upload(_, let tail) = plan.last { #expect(tail) } else { Issue.record("the tail is not last") }
            return plan
        }
        // Large slices are copied whole by the store, nothing through the coordinator.
        #expect(check([6 * m, 7 * m]) == [.copy(slice: 0, range: 0..<6 * m), .copy(slice: 1, range: 0..<7 * m),
                                        .upload(pieces: [], withTail: true)])
        // Small slices only: one run, joined by the tail.
        #expect(check([100, 200, 0, 300]).count == 1)
        // A small run topped up from a large slice whose rest is still a part.
        let topped = check([m / 2, 12 * m])
        #expect(topped[0] == .upload(pieces: [.init(slice: 0, range: 0..<m / 2), .init(slice: 1, range: 0..<m / 2)], withTail: false))
        #expect(topped[1] == .copy(slice: 1, range: m / 2..<12 * m))
        // A small run before a slice too small to split: concatenated.
        _ = check([m / 2, m + 10, m - 1, 3, 9 * m, m / 3])
        // A slice over the maximum part is copied in pieces.
        #expect(check([25 * m], maximum: 10 * m).filter { if case .copy = $0 { true } else { false } }.count == 3)
    }
}
