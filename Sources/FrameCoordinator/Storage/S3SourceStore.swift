import FrameCore
import FrameObjectStore
import Foundation
import Logging
import NIOCore
import NIOPosix

/// Source videos in an S3-compatible bucket (`storage.kind: s3` with `storage.s3.uploads: s3`),
/// at ``ObjectKeys/upload(_:ext:)``.
///
/// Uploads (multipart/form-data and tus alike) are staged and fsynced on the coordinator's disk
/// as before, probed there, then ``persist(job:ext:file:size:)`` copies the file into the bucket
/// with a multipart upload (one part in memory; parts sized so the file fits in S3's 10,000) and
/// returns only once CompleteMultipartUpload has: the job is committed, and the upload
/// acknowledged, after that. A failure aborts the multipart upload; an abort that cannot reach
/// the store either is redone by ``abortAbandonedUploads(olderThan:)`` (the retention sweep).
/// Staging first rather than streaming the request body straight into the bucket keeps the probe
/// as it is (libavformat and the keyframe scan need a seekable file; probing through ranged GETs
/// would cost a request per seek) and gives tus, whose chunks arrive over many requests, the same
/// single path; the cost is the disk space of the uploads being ingested and a local read of
/// each file (from the page cache, right after it was written).
///
/// READs are ranged GETs with read-ahead (``ReadAheadCache``); while the store is unreachable a
/// READ retries for `readPatience` (below the node's 30 s READ timeout) and then fails with
/// `OBJECT_STORE_UNAVAILABLE`, which the node reports back and the lease store requeues without
/// charging an attempt: a job waits out an outage instead of failing.
public struct S3SourceStore: SourceStore {
    public let client: S3Client
    let layout: StorageLayout
    let partSize: Int
    let readPatience: Duration
    let threadPool: NIOThreadPool
    let cache: ReadAheadCache
    let logger: Logger

    public init(
        client: S3Client, layout: StorageLayout, partSize: Int = 16 << 20, readAheadBytes: Int = 8 << 20,
        readAheadWindows: Int = 16, readPatience: Duration = .seconds(20), threadPool: NIOThreadPool = .singleton,
        logger: Logger
    ) {
        self.client = client
        self.layout = layout
        self.partSize = partSize
        self.readPatience = readPatience
        self.threadPool = threadPool
        self.cache = ReadAheadCache(windows: ReadAheadWindows(windowBytes: readAheadBytes, total: readAheadWindows))
        self.logger = logger
    }

    /// Bytes held by the read-ahead (for tests and diagnostics).
    public var readAheadBytesHeld: Int { cache.heldBytes }

    public func persist(job: UUID, ext: String, file: URL, size: Int64) async throws {
        let started = ContinuousClock.now
        let stored = try await ObjectFileUpload.upload(
            client: client, key: ObjectKeys.upload(job, ext: ext), file: file, partSize: partSize,
            contentType: "application/octet-stream", threadPool: threadPool)
        logger.info("upload stored in the object store", metadata: [
            "job": "\(job.lowercased)", "bytes": "\(stored.bytes)", "parts": "\(stored.parts)",
            "store_ms": "\((ContinuousClock.now - started).milliseconds)",
        ])
    }

    /// The staging folder goes: the object is the source from now on.
    public func released(job: UUID) async {
        let folder = layout.uploadDirectory(job)
        _ = try? await threadPool.runIfActive { try? FileManager.default.removeItem(at: folder) }
    }

    public func read(lease: LeaseRef, job: UUID, ext: String, size: Int64, offset: Int64, count: Int) async throws -> ByteBuffer {
        let key = ObjectKeys.upload(job, ext: ext)
        let client = self.client
        let patience = readPatience
        let logger = self.logger
        return try await cache.read(lease: lease, offset: offset, count: count, size: size) { range in
            let giveUp = ContinuousClock.now + patience
            var delay = Duration.milliseconds(250)
            while true {
                do {
                    // Each try is bounded by what is left of the patience: a store that hangs instead of
                    // refusing must not hold the READ past the node's own READ timeout either.
                    let left = max(giveUp - ContinuousClock.now, .milliseconds(100))
                    return try await withTimeout(left, "object store GET \(key)", timedOut: { S3Error.unavailable($0) }) {
                        try await client.getObject(key, range: range.lowerBound...(range.upperBound - 1), limit: range.count)
                    }
                } catch S3Error.unavailable(let why) where ContinuousClock.now + delay < giveUp && !Task.isCancelled {
                    logger.warning("object store unavailable; retrying a source read", metadata: [
                        "job": "\(job.lowercased)", "segment": "\(lease.segment)", "epoch": "\(lease.epoch)",
                        "error": "\(why)", "retry_in_ms": "\(delay.milliseconds)",
                    ])
                    try await Task.sleep(for: delay)
                    delay = min(delay * 2, .seconds(2))
                }
            }
        }
    }

    public func delete(job: UUID) async throws {
        cache.forget(job: job)
        try await client.deleteAll(prefix: ObjectKeys.uploadFolder(job))
    }

    public func sweepAbandoned() async throws { try await abortAbandonedUploads() }

    /// Aborts multipart uploads under `uploads/` started more than `age` ago: what an upload
    /// interrupted by a crash, or by a store that went away before its abort, left behind. The age
    /// keeps it clear of uploads in progress (this or another coordinator's). Returns how many.
    @discardableResult
    public func abortAbandonedUploads(olderThan age: Duration = .seconds(6 * 3600)) async throws -> Int {
        let cutoff = Date().addingTimeInterval(-Double(age.components.seconds))
        var aborted = 0
        for upload in try await client.listMultipartUploads(prefix: ObjectKeys.uploadsRoot)
        where (upload.initiated ?? .distantFuture) < cutoff {
            try await client.abortMultipartUpload(upload.key, uploadID: upload.uploadID)
            aborted += 1
            logger.notice("aborted an abandoned multipart upload", metadata: ["key": "\(upload.key)"])
        }
        return aborted
    }
}

/// Copies a local file into one object with ``S3MultipartWriter``: the one implementation behind
/// archives (``S3ArchiveStore``) and sources (``S3SourceStore``).
enum ObjectFileUpload {
    /// Reads of the file: small next to a part, so memory is one part plus one read.
    static let readBytes = 1 << 20

    /// Stores `file` (or only its bytes `bytes`) as `key`; returns once the object is complete.
    /// Any failure aborts the multipart upload before it is rethrown.
    static func upload(
        client: S3Client, key: String, file: URL, bytes: Range<Int64>? = nil, partSize: Int, contentType: String,
        threadPool: NIOThreadPool
    ) async throws -> (bytes: Int64, parts: Int) {
        let size = try await threadPool.runIfActive {
            (try FileManager.default.attributesOfItem(atPath: file.path)[.size] as? NSNumber)?.int64Value ?? 0
        }
        let range = bytes ?? 0..<size
        guard range.upperBound <= size else {
            throw S3Error.invalidResponse("\(file.lastPathComponent) has \(size) bytes, not the \(range.upperBound) to store")
        }
        var writer = S3MultipartWriter(client: client, key: key, partSize: partSize, expectedSize: Int64(range.count), contentType: contentType)
        let handle = try FileHandle(forReadingFrom: file)
        defer { try? handle.close() }
        do {
            if range.lowerBound > 0 {
                try await threadPool.runIfActive { try handle.seek(toOffset: UInt64(range.lowerBound)) }
            }
            var left = Int64(range.count)
            while left > 0 {
                // Blocking reads stay on the thread pool, never on the cooperative pool.
                let want = Int(min(Int64(readBytes), left))
                let data = try await threadPool.runIfActive { try handle.read(upToCount: want) ?? Data() }
                if data.isEmpty { break }
                left -= Int64(data.count)
                try await writer.write(ByteBuffer(bytes: data))
            }
            try await writer.finish()
        } catch {
            await writer.abort()
            throw error
        }
        return (writer.bytesWritten, max(1, writer.parts.count))
    }
}
