import FrameAPI
import FrameCluster
import FrameCore
import FrameExtract
import FrameStore
import Foundation
import FrameTestSupport
import Hummingbird
import HummingbirdTesting
import HTTPTypes
import Logging
import NIOCore
import Testing
@testable import FrameCoordinator
@testable import FrameObjectStore

/// Source videos in the object store (`storage.s3.uploads: s3`) against a real S3-compatible
/// server (Swift + s3api, started by scripts/test): the upload is in the bucket before the job
/// exists, nodes read it through the coordinator's ranged GETs and the ZIP equals `frameflow
/// extract`'s, cancellation and retention delete it, an upload while the store is unreachable is a
/// 503 that leaves nothing behind, and a store that goes away mid-job delays the job, never fails it.
/// The store's "outage" is a TCP proxy between the coordinator and the store being cut: what the
/// coordinator sees of a store that went away (refused and reset connections).
@Suite(.serialized, .timeLimit(.minutes(6))) struct ObjectStorageSourceTests {
    /// A fresh bucket, or nil (the test skips) when scripts/test did not start a store.
    static func liveClient(_ stem: String) async throws -> S3Client? {
        try await ObjectStorageJobTests.liveStore(stem)?.client
    }

    /// The same bucket reached through `proxy` (whose target is the store).
    static func proxied(_ client: S3Client, _ proxy: TCPProxy) throws -> S3Client {
        var configuration = client.configuration
        configuration.endpoint = URL(string: "http://127.0.0.1:\(proxy.port)")!
        configuration.requestTimeout = .seconds(10)
        return try S3Client(configuration: configuration, logger: Logger(label: "test.s3.proxied"))
    }

    static func layout(_ config: CoordinatorConfig) -> StorageLayout {
        StorageLayout(uploads: config.uploadsDirectory, spool: config.spoolDirectory, results: config.resultsDirectory)
    }

    /// Every object and unfinished multipart upload under `uploads/`.
    static func leftovers(_ client: S3Client) async throws -> (objects: [String], multipart: [String]) {
        let objects = try await client.listObjects(prefix: ObjectKeys.uploadsRoot).objects.map(\.key)
        let uploads = try await client.listMultipartUploads(prefix: ObjectKeys.uploadsRoot).map(\.key)
        return (objects, uploads)
    }

    static func expectSameEntries(_ zip: URL, asExtractOf video: URL, rate: Rational, in dir: URL) throws {
        let reference = dir.appendingPathComponent("reference-\(UUID().uuidString.prefix(6)).zip")
        _ = try FrameExtractor.run(ExtractRequest(input: video.path, rate: rate, output: reference))
        let ours = try Fixtures.zipEntries(zip)
        let theirs = try Fixtures.zipEntries(reference)
        #expect(ours.keys.sorted() == theirs.keys.sorted())
        for name in theirs.keys where name.hasPrefix("frame_") {
            #expect(ours[name] == theirs[name], "\(name) differs")
        }
    }

    /// `storage.s3.uploads` picks the store the coordinator's scheduler, ingest and retention use.
    @Test func theConfigurationPicksTheSourceStore() throws {
        let s3 = [
            "coordinator.storage.kind=s3", "coordinator.storage.s3.endpoint=http://127.0.0.1:9", "coordinator.storage.s3.bucket=frames",
            "coordinator.storage.s3.access_key_id=AK", "coordinator.storage.s3.secret_access_key=s",
        ]
        func store(_ overrides: [String]) throws -> any SourceStore {
            let config = try ClusterConfig.load(file: nil, environment: [:], overrides: overrides).coordinator
            return try CoordinatorService.sourceStore(for: config, logger: Logger(label: "test"))
        }
        #expect(try store([]) is LocalSourceStore)
        #expect(try store(s3) is LocalSourceStore, "archives in the bucket, uploads on disk: the default")
        let inBucket = try #require(try store(s3 + ["coordinator.storage.s3.uploads=s3"]) as? S3SourceStore)
        #expect(inBucket.client.configuration.bucket == "frames")
    }

    @Test func sourcesInTheBucketMakeTheSameZipAndCancelAndRetentionDeleteThem() async throws {
        guard let client = try await Self.liveClient("src") else { return }
        let holder = StoreHolder()
        let h = try await PipelineTests.makeHarness(
            archives: { config, logger in
                S3ArchiveStore(client: client, resultsDirectory: config.resultsDirectory, partSize: 5 << 20, downloads: .presigned, logger: logger)
            },
            sources: { config, logger in
                // Small windows: the fixture is a few hundred KiB, and several windows per lease get fetched.
                let store = S3SourceStore(client: client, layout: Self.layout(config), partSize: 5 << 20, readAheadBytes: 64 << 10,
                                          readAheadWindows: 4, logger: logger)
                holder.store = store
                return store
            })
        let video = try Fixtures.video(seconds: 8, name: "source clip.mp4")

        // Cancelled before any node runs: its source object goes at once.
        let cancelled = try await PipelineTests.submit(h, video: video, rate: Rational(1, 1))
        #expect(try await client.headObject(ObjectKeys.upload(cancelled.id, ext: "mp4")) != nil)
        let canceller = SchedulerCanceller(scheduler: try #require(h.service.scheduler), sources: h.service.sources)
        #expect(try await canceller.cancel(jobID: cancelled.id).status == .cancelled)
        #expect(try await client.headObject(ObjectKeys.upload(cancelled.id, ext: "mp4")) == nil)

        let job = try await PipelineTests.submit(h, video: video, rate: Rational(1, 1))
        // In the bucket once the job exists, and the staging copy is gone: READs can only come from the store.
        let info = try #require(try await client.headObject(ObjectKeys.upload(job.id, ext: "mp4")))
        #expect(info.size == job.sizeBytes)
        #expect(!FileManager.default.fileExists(atPath: h.service.layout.uploadDirectory(job.id).path))

        let a = try PipelineTests.startAgent(h, name: "src-a", slots: 2)
        defer { a.cancel() }
        let done = try await PipelineTests.waitForStatus(h, job.id, [.completed, .failed])
        #expect(done.status == .completed, "\(String(describing: done.errorCode)): \(done.errorMessage ?? "")")
        let zip = h.dir.appendingPathComponent("from-bucket.zip")
        try Data(try await client.getObject(S3ArchiveStore.key(job.id), limit: 256 << 20).readableBytesView).write(to: zip)
        try Self.expectSameEntries(zip, asExtractOf: video, rate: Rational(1, 1), in: h.dir)
        // The read-ahead kept at most its 4 windows (each at least one READ, 1 MiB) whatever the number of READs.
        #expect(try #require(holder.store).readAheadBytesHeld <= 4 * (1 << 20))

        // Retention deletes the source with the archive.
        try await JobStore(database: h.database).setExpiry(id: job.id, at: Date().addingTimeInterval(-1))
        #expect(try await h.service.sweeper?.sweep() == [job.id])
        #expect(try await client.headObject(ObjectKeys.upload(job.id, ext: "mp4")) == nil)
        #expect(try await Self.leftovers(client).objects.isEmpty)
        await h.stop()
    }

    @Test func theStoreGoingAwayDuringTheJobDelaysItAndItCompletes() async throws {
        guard let client = try await Self.liveClient("outage") else { return }
        let proxy = try TCPProxy(targetPort: client.configuration.endpoint.port ?? 80)
        defer { proxy.stop() }
        let through = try Self.proxied(client, proxy)
        // One attempt per segment: a READ failure charged like a decode failure would fail the job.
        let h = try await PipelineTests.makeHarness(
            extra: ["coordinator.max_attempts=1"],
            sources: { config, logger in
                S3SourceStore(client: through, layout: Self.layout(config), partSize: 5 << 20, readAheadBytes: 64 << 10,
                              readPatience: .seconds(1), logger: logger)
            })
        let video = try Fixtures.video(seconds: 30, name: "outage.mp4")
        let job = try await PipelineTests.submit(h, video: video, rate: Rational(2, 1))
        // The store goes away after the upload is stored, while the job is being worked on: every
        // READ of its source fails (a fixture this small is read whole by the first READs of a
        // segment, so a cut "between READs" of a running job is a race the test could not win).
        proxy.cut()
        let a = try PipelineTests.startAgent(h, name: "src-outage", slots: 1)
        defer { a.cancel() }
        let jobs = JobStore(database: h.database)
        try await Task.sleep(for: .seconds(8))
        let during = try #require(try await jobs.get(id: job.id))
        #expect(during.status == .processing || during.status == .queued, "the job waits while the store is away: \(during.status)")
        proxy.resume()
        let done = try await PipelineTests.waitForStatus(h, job.id, [.completed, .failed], timeout: .seconds(120))
        #expect(done.status == .completed, "\(String(describing: done.errorCode)): \(done.errorMessage ?? "")")
        // The outage did reach a READ: segments were requeued for it, uncharged.
        let requeued = try await h.database.withConnection { conn in
            try conn.query(
                "SELECT count(*) AS n FROM job_events WHERE job_id = $1::uuid AND reason = 'OBJECT_STORE_UNAVAILABLE'", job.id
            ).first!.int("n")
        }
        #expect(requeued >= 1)
        try Self.expectSameEntries(h.service.layout.result(job.id), asExtractOf: video, rate: Rational(2, 1), in: h.dir)
        await h.stop()
    }

    @Test func anUploadWhileTheStoreIsUnreachableIs503AndLeavesNothingAndTusWaitsForTheBucket() async throws {
        guard let client = try await Self.liveClient("down") else { return }
        let proxy = try TCPProxy(targetPort: client.configuration.endpoint.port ?? 80)
        defer { proxy.stop() }
        let through = try Self.proxied(client, proxy)
        var logger = Logger(label: "test.upload")
        logger.logLevel = .error
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("ff-srcup-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let database = Database(url: try await TestDatabase.create(), logger: logger)
        try await database.migrate()
        let layout = StorageLayout(uploads: root.appendingPathComponent("uploads"), spool: root.appendingPathComponent("spool"),
                                   results: root.appendingPathComponent("results"))
        try layout.prepare()
        let sources = S3SourceStore(client: through, layout: layout, partSize: 5 << 20, logger: logger)
        let ingestor = MediaIngestor(database: database, segmentSeconds: 2, maxAttempts: 3, sources: sources)
        let api = await FrameAPIServer(
            configuration: APIConfiguration(
                uploadsDirectory: layout.uploads, resultsDirectory: layout.results,
                jwtSecret: "a-secret-that-is-long-enough-for-hs256", bcryptCost: 4),
            database: database, ingestor: ingestor, canceller: UnusedCanceller(), logger: logger)
        let app = Application(router: api.makeRouter(), logger: logger)
        let video = try Data(contentsOf: try Fixtures.video(seconds: 4, name: "down.mp4"))
        try await app.test(.router) { http in
            let json: HTTPFields = [.contentType: "application/json"]
            let credentials = ByteBuffer(string: #"{"email":"down@example.com","password":"Str0ng!pass"}"#)
            #expect(try await http.execute(uri: "/auth/register", method: .post, headers: json, body: credentials).status == .created)
            let login = try await http.execute(uri: "/auth/login", method: .post, headers: json, body: credentials)
            let token = try #require(
                (try JSONSerialization.jsonObject(with: Data(login.body.readableBytesView)) as? [String: Any])?["accessToken"] as? String)
            let boundary = "ff-\(UUID().uuidString)"
            var body = ByteBuffer()
            body.writeString("--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"down.mp4\"\r\n"
                + "Content-Type: video/mp4\r\n\r\n")
            body.writeBytes(video)
            body.writeString("\r\n--\(boundary)--\r\n")
            let headers: HTTPFields = [.authorization: "Bearer \(token)", .contentType: "multipart/form-data; boundary=\(boundary)"]

            proxy.cut()
            let refused = try await http.execute(uri: "/videos", method: .post, headers: headers, body: body)
            #expect(refused.status == .serviceUnavailable)
            #expect(refused.headers[.retryAfter] == "5")
            #expect(refused.headers[.contentType]?.hasPrefix("application/problem+json") == true)
            let problem = try JSONSerialization.jsonObject(with: Data(refused.body.readableBytesView)) as? [String: Any]
            #expect(problem?["code"] as? String == "OBJECT_STORE_UNAVAILABLE")
            // Nothing acknowledged, nothing kept: no job, no staged file, no object, no multipart upload.
            let remaining = try FileManager.default.contentsOfDirectory(atPath: layout.uploads.path)
            #expect(remaining.isEmpty, "staged files left: \(remaining)")
            let count = try await database.withConnection { try $0.query("SELECT count(*) AS n FROM jobs").first!.int("n") }
            #expect(count == 0)
            let left = try await Self.leftovers(client)
            #expect(left.objects.isEmpty && left.multipart.isEmpty, "\(left)")

            proxy.resume()
            let accepted = try await http.execute(uri: "/videos", method: .post, headers: headers, body: body)
            #expect(accepted.status == .created)
            let id = try #require(
                ((try JSONSerialization.jsonObject(with: Data(accepted.body.readableBytesView)) as? [String: Any])?["id"] as? String)
                    .flatMap(UUID.init(uuidString:)))
            #expect(try await client.headObject(ObjectKeys.upload(id, ext: "mp4"))?.size == Int64(video.count))
            #expect(try FileManager.default.contentsOfDirectory(atPath: layout.uploads.path).isEmpty, "the staging copy is removed")

            // tus: the bytes are durable on disk chunk by chunk as before; the final PATCH's 204 waits for
            // the bucket. With the store away it is a 503 and the upload stays complete on disk; the
            // client's next HEAD finishes it into a job once the store is back.
            func field(_ name: String) -> HTTPField.Name { HTTPField.Name(name)! }
            var create: HTTPFields = [.authorization: "Bearer \(token)", field("Tus-Resumable"): "1.0.0"]
            create[field("Upload-Length")] = String(video.count)
            create[field("Upload-Metadata")] = "filename \(Data("tus.mp4".utf8).base64EncodedString())"
            let created = try await http.execute(uri: "/uploads", method: .post, headers: create)
            #expect(created.status == .created)
            let path = try #require(created.headers[.location].flatMap(URL.init(string:))).path
            let tusID = try #require(UUID(uuidString: URL(fileURLWithPath: path).lastPathComponent))
            var patch: HTTPFields = [.authorization: "Bearer \(token)", field("Tus-Resumable"): "1.0.0",
                                     .contentType: "application/offset+octet-stream"]
            patch[field("Upload-Offset")] = "0"
            proxy.cut()
            let final = try await http.execute(uri: path, method: .patch, headers: patch, body: ByteBuffer(bytes: video))
            #expect(final.status == .serviceUnavailable, "no 204 before the bucket has it")
            #expect(final.headers[.retryAfter] == "5")
            #expect(try await client.headObject(ObjectKeys.upload(tusID, ext: "mp4")) == nil)
            proxy.resume()
            let head = try await http.execute(uri: path, method: .head, headers: [.authorization: "Bearer \(token)", field("Tus-Resumable"): "1.0.0"])
            #expect(head.status == .ok)
            #expect(head.headers[field("FrameFlow-Video-Id")] == tusID.uuidString.lowercased())
            #expect(try await client.headObject(ObjectKeys.upload(tusID, ext: "mp4"))?.size == Int64(video.count))
        }
        await database.shutdown()
    }

    /// A multipart upload that fails is aborted (no parts left), and one an abort could not reach
    /// (the store was gone too, or the coordinator died) is found and aborted by the sweep.
    @Test func failedAndAbandonedMultipartUploadsLeaveNoParts() async throws {
        guard let client = try await Self.liveClient("abort") else { return }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ff-abort-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let layout = StorageLayout(uploads: dir, spool: dir, results: dir)
        let store = S3SourceStore(client: client, layout: layout, partSize: 5 << 20, logger: Logger(label: "test.s3"))

        // A writer that got two parts in and then fails (the caller aborts, as ObjectFileUpload does).
        let key = ObjectKeys.upload(UUID(), ext: "mp4")
        var writer = S3MultipartWriter(client: client, key: key, partSize: 5 << 20)
        try await writer.write(ByteBuffer(repeating: 1, count: 11 << 20))
        #expect(writer.parts.count == 2)
        #expect(try await Self.leftovers(client).multipart == [key], "parts are in the store until the abort")
        await writer.abort()
        #expect(try await Self.leftovers(client).multipart.isEmpty)
        #expect(try await client.headObject(key) == nil)

        // Left behind on purpose (as by a crash): the sweep aborts it once old enough.
        let orphanKey = ObjectKeys.upload(UUID(), ext: "mp4")
        let orphan = try await client.createMultipartUpload(orphanKey)
        _ = try await client.uploadPart(orphanKey, uploadID: orphan, partNumber: 1, body: ByteBuffer(repeating: 2, count: 1024))
        #expect(try await Self.leftovers(client).multipart.count == 1)
        #expect(try await store.abortAbandonedUploads(olderThan: .seconds(3600)) == 0, "a young upload may be in progress")
        // Stores round `Initiated` up to the second (Swift's s3api does): past it, an age of zero takes it.
        try await Task.sleep(for: .milliseconds(2100))
        #expect(try await store.abortAbandonedUploads(olderThan: .zero) == 1)
        #expect(try await Self.leftovers(client).multipart.isEmpty)
    }

    /// A multi-GB upload goes to the bucket with the coordinator's memory bounded by about one part:
    /// the peak RSS of this process (VmHWM, reset first) grows by far less than the file. 64 MiB by
    /// default; scripts/test runs FRAMEFLOW_S3_SOURCE_BIG_MIB=2560 (a sparse file: no disk to fill).
    @Test func aMultiGigabyteUploadIsStoredInBoundedMemory() async throws {
        guard let client = try await Self.liveClient("big") else { return }
        let mib = Int(ProcessInfo.processInfo.environment["FRAMEFLOW_S3_SOURCE_BIG_MIB"] ?? "") ?? 64
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ff-big-\(UUID().uuidString)")
        let job = UUID()
        let layout = StorageLayout(uploads: dir, spool: dir, results: dir)
        let file = layout.input(job, ext: "mp4")
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let size = Int64(mib) << 20
        #expect(FileManager.default.createFile(atPath: file.path, contents: nil))
        let handle = try FileHandle(forWritingTo: file)
        try handle.truncate(atOffset: UInt64(size))
        // A marker at the very end, read back below through a ranged GET past 2^31.
        try handle.seek(toOffset: UInt64(size - 8))
        try handle.write(contentsOf: Data("end-mark".utf8))
        try handle.close()

        let store = S3SourceStore(client: client, layout: layout, partSize: 16 << 20, logger: Logger(label: "test.s3"))
        let before = Self.memory()
        Self.resetPeak()
        let started = ContinuousClock.now
        try await store.persist(job: job, ext: "mp4", file: file, size: size)
        let elapsed = ContinuousClock.now - started
        let after = Self.memory()
        #expect(try await client.headObject(ObjectKeys.upload(job, ext: "mp4"))?.size == size)
        let tail = try await store.read(lease: LeaseRef(jobID: job, segment: 0, epoch: 1), job: job, ext: "mp4", size: size,
                                        offset: size - 8, count: 8)
        #expect(String(buffer: tail) == "end-mark")
        let part = S3MultipartWriter.partSize(requested: 16 << 20, expectedSize: size)
        let growth = after.peak - before.rss
        print("ObjectStorageSourceTests: \(mib) MiB stored in \(elapsed) with \((size + Int64(part) - 1) / Int64(part)) parts of \(part >> 20) MiB; peak RSS +\(growth >> 20) MiB (before \(before.rss >> 20) MiB)")
        // One part buffered, one being hashed and sent, a 1 MiB read and allocator slack: far below the file.
        #expect(growth < 8 * Int64(part), "peak RSS grew by \(growth >> 20) MiB for a \(mib) MiB upload")
        try await store.delete(job: job)
        #expect(try await client.headObject(ObjectKeys.upload(job, ext: "mp4")) == nil)
    }

    /// This process's resident and peak resident bytes (/proc/self/status).
    static func memory() -> (rss: Int64, peak: Int64) {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        func kib(_ name: String) -> Int64 {
            guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(name + ":") }) else { return 0 }
            return (Int64(line.split(separator: " ").dropFirst().first ?? "") ?? 0) * 1024
        }
        return (kib("VmRSS"), kib("VmHWM"))
    }

    /// Resets VmHWM to the current RSS (Linux: "5" to /proc/self/clear_refs).
    static func resetPeak() {
        try? "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)
    }
}

/// Set once by the harness's factory, read by the test after the job.
final class StoreHolder: @unchecked Sendable {
    var store: S3SourceStore?
}
