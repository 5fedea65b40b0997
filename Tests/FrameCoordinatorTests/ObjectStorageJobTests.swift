import FrameAPI
import FrameCluster
import FrameCore
import FrameExtract
import FrameStore
import Foundation
import FrameTestSupport
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import Testing
@testable import FrameCoordinator
@testable import FrameNode
@testable import FrameObjectStore

/// Whole jobs with `storage.kind: s3` against a real S3-compatible server (OpenStack Swift +
/// s3api, started by scripts/test): the ZIP is in the bucket before the job is COMPLETED, its
/// presigned link downloads the same archive as `frameflow extract`, retention deletes the object,
/// and a store that cannot take the archive leaves the job waiting, not failed.
@Suite(.serialized, .timeLimit(.minutes(5))) struct ObjectStorageJobTests {
    /// An archive store that refuses the first `failures` publishes as an unreachable store would.
    final class FlakyArchives: ArchiveStore {
        let base: S3ArchiveStore
        let remaining: NIOLockedValueBox<Int>
        init(base: S3ArchiveStore, failures: Int) {
            self.base = base
            self.remaining = NIOLockedValueBox(failures)
        }
        func publish(job: UUID, file: URL) async throws {
            let fail = remaining.withLockedValue { n in
                defer { n = max(0, n - 1) }
                return n > 0
            }
            if fail { throw S3Error.unavailable("test: the store is down") }
            try await base.publish(job: job, file: file)
        }
        func released(job: UUID) async { await base.released(job: job) }
        func locate(job: UUID, downloadName: String) async throws -> ArchiveLocation { try await base.locate(job: job, downloadName: downloadName) }
        func delete(job: UUID) async throws { try await base.delete(job: job) }
    }

    static func liveStore(_ stem: String) async throws -> S3ArchiveStore? {
        guard let client = try await S3LiveStore.client("ObjectStorageJobTests", stem: "job-\(stem)", prefix: "cluster/",
                                                        requestTimeout: .seconds(120)) else { return nil }
        return S3ArchiveStore(client: client, resultsDirectory: URL(fileURLWithPath: "/nonexistent"), partSize: 5 << 20,
                              downloads: .presigned, logger: Logger(label: "test.s3"))
    }

    struct Harness {
        let pipe: PipelineTests.Harness
        let store: S3ArchiveStore
    }

    static func makeHarness(archives: (S3ArchiveStore) -> any ArchiveStore = { $0 }, stem: String) async throws -> Harness? {
        guard let live = try await liveStore(stem) else { return nil }
        var store: S3ArchiveStore?
        let pipe = try await PipelineTests.makeHarness { config, logger in
            // The store's local staging is this coordinator's results directory.
            let s3 = S3ArchiveStore(client: live.client, resultsDirectory: config.resultsDirectory, partSize: 5 << 20,
                                    downloads: .presigned, logger: logger)
            store = s3
            return archives(s3)
        }
        return Harness(pipe: pipe, store: store!)
    }

    /// GETs `url` with no credentials, as a browser following the redirect would.
    static func anonymousGet(_ url: URL) async throws -> (Int, ByteBuffer) {
        let transport = try HTTPTransport(host: url.host!, port: url.port ?? 80, https: false)
        var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: url.path + "?" + (url.query ?? ""))
        head.headers.add(name: "host", value: "\(url.host!):\(url.port ?? 80)")
        head.headers.add(name: "connection", value: "close")
        return try await transport.execute(head: head, body: nil) { response, body in
            (Int(response.status.code), try await body.collect(upTo: 256 << 20))
        }
    }

    @Test func jobArchiveGoesToTheBucketAndThePresignedLinkEqualsFrameflowExtract() async throws {
        guard let h = try await Self.makeHarness(stem: "path") else { return }
        let a = try PipelineTests.startAgent(h.pipe, name: "s3-a", slots: 2)
        defer { a.cancel() }
        let video = try Fixtures.video(seconds: 8, name: "bucket clip.mp4")
        let job = try await PipelineTests.submit(h.pipe, video: video, rate: Rational(1, 1))
        let done = try await PipelineTests.waitForStatus(h.pipe, job.id, [.completed, .failed])
        #expect(done.status == .completed, "\(String(describing: done.errorCode)): \(done.errorMessage ?? "")")

        // In the bucket, and no longer on the coordinator's disk.
        let info = try #require(try await h.store.client.headObject(S3ArchiveStore.key(job.id)))
        #expect(info.size > 0)
        #expect(!FileManager.default.fileExists(atPath: h.pipe.service.layout.result(job.id).path))
        // Assembled from the segments' slices (docs/distributed-assembly.md), which are gone now.
        #expect(try await JobStore(database: h.pipe.database).events(jobID: job.id).contains { $0.kind == .assemblyClaimed })
        let client = h.store.client
        try await TestCluster.eventually("the slices deleted") { try await client.listObjects(prefix: "parts/").objects.isEmpty }

        guard case .redirect(let link) = try await h.store.locate(job: job.id, downloadName: "bucket clip-frames.zip") else {
            Issue.record("a presigned store answers downloads with a redirect"); return
        }
        #expect(link.query?.contains("X-Amz-Expires=900") == true)
        let (status, body) = try await Self.anonymousGet(link)
        #expect(status == 200)
        let downloaded = h.pipe.dir.appendingPathComponent("downloaded.zip")
        try Data(body.readableBytesView).write(to: downloaded)
        let reference = h.pipe.dir.appendingPathComponent("reference.zip")
        _ = try FrameExtractor.run(ExtractRequest(input: video.path, rate: Rational(1, 1), output: reference))
        let ours = try Fixtures.zipEntries(downloaded)
        let theirs = try Fixtures.zipEntries(reference)
        #expect(ours.keys.sorted() == theirs.keys.sorted())
        for name in theirs.keys where name.hasPrefix("frame_") {
            #expect(ours[name] == theirs[name], "\(name) differs")
        }

        // Streamed through instead (downloads: stream): ranged GETs give the same bytes.
        let streaming = S3ArchiveStore(client: h.store.client, resultsDirectory: h.store.resultsDirectory, partSize: 5 << 20,
                                       downloads: .stream, logger: Logger(label: "test.s3"))
        guard case .stream(let size, let read) = try await streaming.locate(job: job.id, downloadName: "x.zip") else {
            Issue.record("a streaming store answers downloads with a stream"); return
        }
        #expect(size == body.readableBytes)
        let collected = NIOLockedValueBox(ByteBuffer())
        try await read(100...(size - 1)) { piece in
            var piece = piece
            collected.withLockedValue { $0.writeBuffer(&piece) }
        }
        #expect(collected.withLockedValue { $0 } == body.getSlice(at: 100, length: size - 100))

        // Retention deletes the object; then the link is dead at the store itself.
        let sweeper = try #require(h.pipe.service.sweeper)
        try await JobStore(database: h.pipe.database).setExpiry(id: job.id, at: Date().addingTimeInterval(-1))
        #expect(try await sweeper.sweep() == [job.id])
        #expect(try await h.store.client.headObject(S3ArchiveStore.key(job.id)) == nil)
        let (goneStatus, _) = try await Self.anonymousGet(link)
        #expect(goneStatus == 404)
        await h.pipe.stop()
    }

    /// A slice no row names (its coordinator was killed between the slice's upload and the
    /// segment's record, and the segment was redone under a later epoch) goes with the others
    /// when the job completes, not days later with retention.
    @Test func anUnrecordedSliceIsDeletedWhenTheJobCompletes() async throws {
        guard let h = try await Self.makeHarness(stem: "orphan") else { return }
        let video = try Fixtures.video(seconds: 4, name: "orphan.mp4")
        let job = try await PipelineTests.submit(h.pipe, video: video, rate: Rational(1, 1))
        let orphan = SliceArchiver.slicePrefix(job.id) + "0-999.zipslice"
        _ = try await h.store.client.putObject(orphan, body: ByteBuffer(string: "a dead coordinator's slice"))
        let a = try PipelineTests.startAgent(h.pipe, name: "s3-orphan", slots: 2)
        defer { a.cancel() }
        let done = try await PipelineTests.waitForStatus(h.pipe, job.id, [.completed, .failed])
        #expect(done.status == .completed, "\(String(describing: done.errorCode)): \(done.errorMessage ?? "")")
        let client = h.store.client
        try await TestCluster.eventually("every slice of the job deleted") {
            try await client.listObjects(prefix: SliceArchiver.slicePrefix(job.id)).objects.isEmpty
        }
        #expect(try await client.headObject(S3ArchiveStore.key(job.id)) != nil)
    }

    @Test func aStoreThatCannotTakeTheArchiveLeavesTheJobWaitingThenItCompletes() async throws {
        guard let h = try await Self.makeHarness(archives: { FlakyArchives(base: $0, failures: 1) }, stem: "flaky") else { return }
        let a = try PipelineTests.startAgent(h.pipe, name: "s3-flaky", slots: 2)
        defer { a.cancel() }
        let video = try Fixtures.video(seconds: 4, name: "flaky.mp4")
        let job = try await PipelineTests.submit(h.pipe, video: video, rate: Rational(1, 1))
        // The first publish fails: the job is not failed, and the periodic check (every 5 ticks) retries.
        let done = try await PipelineTests.waitForStatus(h.pipe, job.id, [.completed, .failed], timeout: .seconds(90))
        #expect(done.status == .completed, "\(String(describing: done.errorCode)): \(done.errorMessage ?? "")")
        #expect(try await h.store.client.headObject(S3ArchiveStore.key(job.id)) != nil)
        await h.pipe.stop()
    }
}
