import FrameAPI
import FrameCluster
import FrameObjectStore
import FrameStore
import Foundation
import Logging
import NIOPosix

extension MediaIngestor: VideoIngestor {
    /// The API's seam: probe, plan and create the job for a durable upload.
    public func ingest(_ upload: StoredUpload, owner: UUID, options: JobOptions) async throws -> JobRecord {
        try await ingest(
            jobID: upload.jobID, file: upload.file, originalFilename: upload.originalFilename,
            fileExtension: upload.fileExtension, sizeBytes: upload.sizeBytes, owner: owner, rate: options.rate,
            output: options.output, labelRequirement: options.labelRequirement ?? [:])
    }
}

/// The API's cancel seam over the scheduler, which also tells the nodes holding
/// the job's leases to stop. A wrapper rather than a conformance because the
/// scheduler's own `cancel(jobID:)` returns the whole ``CancelOutcome``.
/// A cancelled job's source is deleted from the object store at once (best effort: retention
/// deletes it later if the store is unreachable now); on disk it stays until retention, as before.
public struct SchedulerCanceller: JobCanceller {
    let scheduler: LeaseScheduler
    let sources: (any SourceStore)?
    let logger: Logger

    public init(scheduler: LeaseScheduler, sources: (any SourceStore)? = nil, logger: Logger = Logger(label: "frameflow.cancel")) {
        self.scheduler = scheduler
        self.sources = sources
        self.logger = logger
    }

    public func cancel(jobID: UUID) async throws -> JobRecord {
        let job = try await scheduler.cancel(jobID: jobID).job
        if let sources, job.status == .cancelled {
            do { try await sources.delete(job: jobID) } catch {
                logger.warning("could not delete a cancelled job's source; retention will", metadata: [
                    "job": "\(jobID.uuidString.lowercased())", "error": "\(error)",
                ])
            }
        }
        return job
    }
}

extension CoordinatorService {
    /// The full coordinator: scheduling as ``init(config:database:logger:)`` plus the
    /// user-facing API (`/auth`, `/videos`, `/downloads`) mounted on the HTTP listener.
    ///
    /// Without `jwt_secret` the secret is read from (or generated into) `jwt_secret_file`, so tokens and
    /// signed links survive a restart; a bad file throws its ``ConfigError``.
    public static func withAPI(config: CoordinatorConfig, database: Database, logger: Logger) async throws -> CoordinatorService {
        let archives = try archiveStore(for: config, logger: logger)
        let sources = try sourceStore(for: config, logger: logger)
        let base = CoordinatorService(config: config, database: database, logger: logger, archives: archives, sources: sources)
        guard let scheduler = base.scheduler, let ingestor = base.ingestor else { return base }
        var apiConfig = APIConfiguration(config)
        if apiConfig.jwtSecret == nil {
            let file = config.jwtSecretFile
            apiConfig.jwtSecret = try await NIOThreadPool.singleton.runIfActive { try SecretFile.loadOrCreate(file) }
            logger.info("coordinator.jwt_secret is not set: using the secret kept in \(file.path)")
        }
        let publishing = PublishingIngestor(base: ingestor, feed: base.jobFeed)
        // Sources in the bucket means coordinators that may share no disk: tus uploads keep their
        // bytes there too, so any coordinator can take the next chunk.
        let tusPieces = (sources as? S3SourceStore).map {
            S3TusPieceStore(client: $0.client, partSize: $0.partSize, threadPool: .singleton)
        }
        let api = await FrameAPIServer(
            configuration: apiConfig, database: database, ingestor: publishing,
            canceller: SchedulerCanceller(scheduler: scheduler, sources: sources, logger: logger), logger: logger, archives: archives,
            tusPieces: tusPieces, stagingID: base.coordinatorID)
        return CoordinatorService(
            config: config, directory: PostgresNodeDirectory(database: database, coordinator: base.coordinatorID),
            scheduler: scheduler, ingestor: ingestor, sweeper: base.sweeper, recovery: base.recovery, layout: base.layout,
            logger: base.logger, api: api,
            metrics: base.metrics, jobCounts: { try await JobStore(database: database).statusCounts() },
            notifier: base.notifier, events: base.events, jobFeed: base.jobFeed, monitorDatabase: database,
            coordinatorID: base.coordinatorID, presence: base.presence,
            ready: { await database.ping() })
    }
}

/// The ingestor as the API sees it: a new job is also announced to its owner's event stream.
struct PublishingIngestor: VideoIngestor {
    let base: MediaIngestor
    let feed: JobChangeFeed?

    func ingest(_ upload: StoredUpload, owner: UUID, options: JobOptions) async throws -> JobRecord {
        let job = try await base.ingest(upload, owner: owner, options: options)
        feed?.changed(job.id)
        return job
    }
}

extension CoordinatorService {
    /// The archive store `coordinator.storage` names: the results directory (`kind: local`, the
    /// default) or an S3-compatible bucket (`kind: s3`). Logs which, never the secret.
    public static func archiveStore(for config: CoordinatorConfig, logger: Logger) throws -> any ArchiveStore {
        guard let objectStorage = config.objectStorage else {
            return DirectoryArchiveStore(resultsDirectory: config.resultsDirectory)
        }
        logger.info("archives are kept in the object store", metadata: ["storage": "\(objectStorage)"])
        return try S3ArchiveStore(config: objectStorage, resultsDirectory: config.resultsDirectory, logger: logger)
    }

    /// The source store `coordinator.storage.s3.uploads` names: the upload folders (`local`, the
    /// default, also for `kind: local`) or the bucket (`s3`).
    public static func sourceStore(for config: CoordinatorConfig, logger: Logger) throws -> any SourceStore {
        let layout = StorageLayout(uploads: config.uploadsDirectory, spool: config.spoolDirectory, results: config.resultsDirectory)
        guard let objectStorage = config.objectStorage, objectStorage.uploads == .s3 else {
            return LocalSourceStore(layout: layout)
        }
        logger.info("source videos are kept in the object store", metadata: ["storage": "\(objectStorage)"])
        let client = try S3Client(objectStorage, logger: logger)
        return S3SourceStore(client: client, layout: layout, partSize: objectStorage.partSize, logger: logger)
    }

    /// `storage.s3.node_reads: direct`: the signer that puts a presigned URL of the job's source
    /// into each LEASE (LEASE_URL); nil for `coordinator` (the default) or without a store. A
    /// store client that cannot be made is logged, and nodes read through the coordinator.
    static func sourceURLSigner(for config: CoordinatorConfig, logger: Logger) -> SourceURLSigner? {
        guard let store = config.objectStorage, store.nodeReads == .direct else { return nil }
        if store.uploads != .s3 {
            // Not refused: nodes fall back to READ, but every lease pays a failed GET first.
            logger.warning("storage.s3.node_reads is direct but uploads are local: nodes will fall back to READ; set storage.s3.uploads: s3")
        }
        do {
            let client = try S3Client(
                configuration: S3Configuration(
                    endpoint: store.endpoint, region: store.region, bucket: store.bucket, prefix: store.prefix,
                    pathStyle: store.pathStyle,
                    credentials: S3Credentials(accessKeyID: store.accessKeyID, secretAccessKey: store.secretAccessKey)),
                logger: logger)
            logger.info("nodes read sources straight from the object store (LEASE_URL)", metadata: [
                "url_lifetime_s": "\(store.nodeReadURLLifetime.components.seconds)",
            ])
            return SourceURLSigner(
                client: client, minimumLifetime: store.nodeReadURLLifetime,
                progressDeadline: ProgressDeadline(floor: config.progressTimeout, factor: config.progressFactor))
        } catch {
            logger.error("cannot sign source URLs; nodes read through the coordinator", metadata: ["error": "\(error)"])
            return nil
        }
    }
}
