import FrameAPI
import FrameCluster
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
public struct SchedulerCanceller: JobCanceller {
    let scheduler: LeaseScheduler

    public init(scheduler: LeaseScheduler) {
        self.scheduler = scheduler
    }

    public func cancel(jobID: UUID) async throws -> JobRecord {
        try await scheduler.cancel(jobID: jobID).job
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
        let base = CoordinatorService(config: config, database: database, logger: logger, archives: archives)
        guard let scheduler = base.scheduler, let ingestor = base.ingestor else { return base }
        var apiConfig = APIConfiguration(config)
        if apiConfig.jwtSecret == nil {
            let file = config.jwtSecretFile
            apiConfig.jwtSecret = try await NIOThreadPool.singleton.runIfActive { try SecretFile.loadOrCreate(file) }
            logger.info("coordinator.jwt_secret is not set: using the secret kept in \(file.path)")
        }
        let publishing = PublishingIngestor(base: ingestor, feed: base.jobFeed)
        let api = await FrameAPIServer(
            configuration: apiConfig, database: database, ingestor: publishing,
            canceller: SchedulerCanceller(scheduler: scheduler), logger: logger, archives: archives)
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
}
