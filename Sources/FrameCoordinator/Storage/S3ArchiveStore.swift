import FrameAPI
import FrameCluster
import FrameObjectStore
import Foundation
import Logging
import NIOCore
import NIOPosix

/// Finished archives in an S3-compatible bucket (`coordinator.storage.kind: s3`).
///
/// ``publish(job:file:)`` streams the assembled ZIP from disk into a multipart upload (one part in
/// memory at a time, parts sized so a multi-GB archive fits in S3's 10,000), aborts the upload if
/// anything fails, and returns only once CompleteMultipartUpload has; the local copy is removed
/// after the job is recorded COMPLETED (``released(job:)``), so a crash in between re-publishes
/// rather than losing the archive. Downloads are a redirect to a presigned GET valid for
/// `linkLifetime` (the signed links' 15 minutes), or streamed through with ranged GETs.
/// Retention deletes the object (and leftover segment slices).
public struct S3ArchiveStore: ArchiveStore {
    public let client: S3Client
    let resultsDirectory: URL
    let partSize: Int
    let downloads: ObjectStorageConfig.Downloads
    let linkLifetime: Duration
    let threadPool: NIOThreadPool
    let logger: Logger

    public init(
        client: S3Client, resultsDirectory: URL, partSize: Int, downloads: ObjectStorageConfig.Downloads,
        linkLifetime: Duration = .seconds(15 * 60), threadPool: NIOThreadPool = .singleton, logger: Logger
    ) {
        self.client = client
        self.resultsDirectory = resultsDirectory
        self.partSize = partSize
        self.downloads = downloads
        self.linkLifetime = linkLifetime
        self.threadPool = threadPool
        self.logger = logger
    }

    /// The client for `config`, its secret given only to the signer.
    public init(config: ObjectStorageConfig, resultsDirectory: URL, logger: Logger) throws {
        self.init(client: try S3Client(config, logger: logger), resultsDirectory: resultsDirectory, partSize: config.partSize,
                  downloads: config.downloads, logger: logger)
    }

    /// `archives/<job>.zip` under the configured prefix (``ObjectKeys/archive(_:)``).
    public static func key(_ job: UUID) -> String { ObjectKeys.archive(job) }

    func localFile(_ job: UUID) -> URL { resultsDirectory.appendingPathComponent("\(job.uuidString.lowercased()).zip") }

    public func publish(job: UUID, file: URL) async throws {
        let started = ContinuousClock.now
        let stored = try await ObjectFileUpload.upload(
            client: client, key: Self.key(job), file: file, partSize: partSize, contentType: "application/zip",
            threadPool: threadPool)
        logger.info("archive stored in the object store", metadata: [
            "job": "\(job.uuidString.lowercased())", "bytes": "\(stored.bytes)", "parts": "\(stored.parts)",
            "store_ms": "\((ContinuousClock.now - started).milliseconds)",
        ])
    }

    public func released(job: UUID) async {
        let file = localFile(job)
        _ = try? await threadPool.runIfActive { try? FileManager.default.removeItem(at: file) }
    }

    public func locate(job: UUID, downloadName: String) async throws -> ArchiveLocation {
        switch downloads {
        case .presigned:
            return .redirect(client.presignedGetURL(Self.key(job), expires: Int(linkLifetime.components.seconds), downloadName: downloadName))
        case .stream:
            guard let info = try await client.headObject(Self.key(job)) else { return .missing }
            let client = self.client
            let key = Self.key(job)
            return .stream(size: Int(info.size)) { range, sink in
                try await client.streamObject(key, range: Int64(range.lowerBound)...Int64(range.upperBound), timeout: nil) { _, body in
                    while let piece = try await body.next() { try await sink(piece) }
                }
            }
        }
    }

    /// Retention: the archive and any segment slices still under `parts/<job>/` (those of a job
    /// that failed or was cancelled before assembly, which deletes them otherwise).
    public func delete(job: UUID) async throws {
        try await client.deleteObject(Self.key(job))
        try await client.deleteAll(prefix: SliceArchiver.slicePrefix(job))
    }
}

extension S3Client {
    /// Deletes every object under `prefix`, page by page; throws on the first failure.
    func deleteAll(prefix: String) async throws {
        var token: String?
        repeat {
            let page = try await listObjects(prefix: prefix, continuationToken: token)
            for object in page.objects { try await deleteObject(object.key) }
            token = page.next
        } while token != nil
    }

    /// The client for `storage.s3`, its secret given only to the signer.
    init(_ config: ObjectStorageConfig, logger: Logger) throws {
        try self.init(
            configuration: S3Configuration(
                endpoint: config.endpoint, region: config.region, bucket: config.bucket, prefix: config.prefix,
                pathStyle: config.pathStyle,
                credentials: S3Credentials(accessKeyID: config.accessKeyID, secretAccessKey: config.secretAccessKey)),
            logger: logger)
    }
}
