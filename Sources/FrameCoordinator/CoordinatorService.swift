import FrameAPI
import FrameCluster
import FrameCore
import FrameStore
import FrameWeb
import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

/// The coordinator process: the node listener, the lease scheduler and the
/// HTTP API, run together under one service group with graceful shutdown on
/// SIGTERM/SIGINT.
public struct CoordinatorService: Sendable {
    public let config: CoordinatorConfig
    public let registry: NodeRegistry
    /// Present when the coordinator has a database: it leases work to nodes.
    public let scheduler: LeaseScheduler?
    public let ingestor: MediaIngestor?
    /// Where the source videos live (the upload folders, or the object store).
    public var sources: (any SourceStore)? { ingestor?.sources }
    /// Present with a database: deletes the files of jobs past their retention.
    public let sweeper: RetentionSweeper?
    /// Present with a database: cleans what a killed coordinator left on disk, before serving.
    public let recovery: StorageRecovery?
    public let layout: StorageLayout
    public let logger: Logger
    /// The user-facing API mounted next to the operator routes; nil serves only /health, /ready and /admin.
    public let api: FrameAPIServer?
    /// This coordinator's own Prometheus registry, served at `/metrics`.
    public let metrics: CoordinatorMetrics
    /// Present with a database: delivers the notification outbox (e-mail, webhooks).
    public let notifier: NotificationDispatcher?
    /// Server push: job changes to their owners, cluster samples to operators.
    public let events: EventHub
    /// Present with a database: turns job changes into events.
    public let jobFeed: JobChangeFeed?
    /// Present with a database: samples the cluster for the operators' dashboard.
    public let monitor: ClusterMonitor?
    /// This coordinator's name among several on one database (WELCOME `coordinatorID`, leases, claims).
    public let coordinatorID: String
    /// Present with a database: the liveness row, and the take-over of dead coordinators' leases.
    public let presence: CoordinatorPresence?
    private let jobCounts: (@Sendable () async throws -> [JobStatus: Int])?
    private let ready: @Sendable () async -> Bool

    /// A coordinator that schedules jobs stored in `database`.
    ///
    /// With an ``S3ArchiveStore`` (`storage.kind: s3`) archives are assembled from segment slices
    /// in its bucket (``SliceArchiver``, docs/distributed-assembly.md) unless `slices` says otherwise;
    /// with local storage, by libzip from the spool as ever. `sources` is where the uploaded videos
    /// are read from (default: the uploads directory). `coordinatorID` names this process in the
    /// assembly claim (default: host, pid and a random suffix).
    public init(
        config: CoordinatorConfig, database: Database, logger: Logger, archives: (any ArchiveStore)? = nil,
        sources: (any SourceStore)? = nil, slices: SliceArchiver? = nil, coordinatorID: String? = nil
    ) {
        let layout = StorageLayout(uploads: config.uploadsDirectory, spool: config.spoolDirectory, results: config.resultsDirectory)
        let archives = archives ?? DirectoryArchiveStore(resultsDirectory: config.resultsDirectory)
        let sources = sources ?? LocalSourceStore(layout: layout)
        let slices = slices ?? (archives as? S3ArchiveStore).map {
            SliceArchiver(client: $0.client, partSize: $0.partSize, threadPool: $0.threadPool, logger: logger)
        }
        let metrics = CoordinatorMetrics()
        let events = EventHub()
        let coordinatorID = coordinatorID ?? CoordinatorIdentity.generate()
        var logger = logger
        logger[metadataKey: "coordinator"] = "\(coordinatorID)"
        let feed = JobChangeFeed(hub: events, database: database, logger: logger, coordinatorID: coordinatorID)
        let scheduler = LeaseScheduler(
            database: database, layout: layout, leaseTTL: config.leaseTTL, retentionDays: config.retentionDays,
            resumeGrace: config.leaseResumeGrace,
            progressDeadline: ProgressDeadline(floor: config.progressTimeout, factor: config.progressFactor),
            logger: logger, metrics: metrics, observer: feed, archives: archives, sources: sources,
            slices: slices, coordinatorID: coordinatorID, sourceURLs: Self.sourceURLSigner(for: config, logger: logger),
            peerEndings: feed.peerEndings)
        let jobs = JobStore(database: database)
        let presence = CoordinatorPresence(
            id: coordinatorID, database: database, ttl: config.heartbeatTimeout,
            httpAddress: "\(config.httpListen.host):\(config.httpListen.port)",
            clusterAddress: "\(config.clusterListen.host):\(config.clusterListen.port)", logger: logger,
            leasesReturned: { _ in await scheduler.jobArrived() })
        self.init(
            config: config, directory: PostgresNodeDirectory(database: database, coordinator: coordinatorID),
            scheduler: scheduler,
            ingestor: MediaIngestor(
                database: database, segmentSeconds: config.segmentSeconds, maxAttempts: config.maxAttempts,
                maxNodeLosses: config.maxNodeLosses, metrics: metrics, sources: sources,
                onNewJob: { await scheduler.jobArrived() }),
            sweeper: RetentionSweeper(database: database, layout: layout, logger: logger, archives: archives, sources: sources),
            recovery: StorageRecovery(
                database: database, layout: layout, logger: logger,
                peersAlive: { try await !presence.peers().isEmpty }),
            layout: layout, logger: logger, metrics: metrics, jobCounts: { try await jobs.statusCounts() },
            notifier: NotificationDispatcher(database: database, config: config.notifications, logger: logger),
            events: events, jobFeed: feed, monitorDatabase: database,
            coordinatorID: coordinatorID, presence: presence,
            ready: { await database.ping() })
    }

    /// A coordinator with only node sessions (no scheduling), e.g. for transport tests.
    public init(
        config: CoordinatorConfig, directory: any NodeDirectory, scheduler: LeaseScheduler? = nil,
        ingestor: MediaIngestor? = nil, sweeper: RetentionSweeper? = nil, recovery: StorageRecovery? = nil,
        layout: StorageLayout? = nil, logger: Logger,
        api: FrameAPIServer? = nil, metrics: CoordinatorMetrics? = nil,
        jobCounts: (@Sendable () async throws -> [JobStatus: Int])? = nil, notifier: NotificationDispatcher? = nil,
        events: EventHub? = nil, jobFeed: JobChangeFeed? = nil, monitorDatabase: Database? = nil,
        coordinatorID: String? = nil, presence: CoordinatorPresence? = nil,
        ready: @escaping @Sendable () async -> Bool = { true }
    ) {
        self.config = config
        self.registry = NodeRegistry(directory: directory, logger: logger)
        self.scheduler = scheduler
        self.ingestor = ingestor
        self.sweeper = sweeper
        self.recovery = recovery
        self.layout = layout ?? StorageLayout(
            uploads: config.uploadsDirectory, spool: config.spoolDirectory, results: config.resultsDirectory)
        self.logger = logger
        self.api = api
        self.metrics = metrics ?? scheduler?.metrics ?? CoordinatorMetrics()
        self.jobCounts = jobCounts
        self.notifier = notifier
        let events = events ?? EventHub()
        self.events = events
        self.jobFeed = jobFeed
        let registry = self.registry
        monitor = monitorDatabase.map { ClusterMonitor(hub: events, registry: registry, database: $0, logger: logger) }
        self.coordinatorID = coordinatorID ?? scheduler?.coordinatorID ?? CoordinatorIdentity.generate()
        self.presence = presence
        self.ready = ready
    }

    /// Binds both listeners, calls `onRunning` with the actual ports, and serves until shutdown.
    public func run(
        handleSignals: Bool = true, onRunning: @escaping @Sendable (_ httpPort: Int, _ clusterPort: Int) async -> Void = { _, _ in }
    ) async throws {
        try layout.prepare()
        // First: peers must see this coordinator alive before it holds anything (a lease, an
        // assembly claim), and recovery asks who else is alive.
        if let presence {
            do { try await presence.announce() } catch {
                // The presence service announces again once the database answers.
                logger.error("cannot record this coordinator's liveness; continuing", metadata: ["error": "\(error)"])
            }
        }
        // Before any listener opens: no upload can be in flight while orphans are judged.
        if let recovery {
            do { try await recovery.run() } catch {
                logger.error("start-up storage recovery failed; continuing", metadata: ["error": "\(error)"])
            }
        }
        let tls = try TLSContexts.coordinator(config.tls)
        let settings = SessionSettings(
            coordinatorID: coordinatorID,
            heartbeatInterval: config.heartbeatInterval, heartbeatTimeout: config.heartbeatTimeout,
            maxFrameLength: config.maxFrameBytes)
        let listener = try await NodeListener.bind(
            host: config.clusterListen.host, port: config.clusterListen.port, tls: tls,
            registry: registry, work: scheduler, settings: settings, logger: logger)
        let clusterPort = listener.port
        let contract: APIContract?
        do {
            contract = try APIContract.bundled()
        } catch {
            // The contract tests parse the same file, so this is a broken build, not a broken request.
            logger.error("the bundled openapi.yaml cannot be read; /openapi.* are not served", metadata: ["error": "\(error)"])
            contract = nil
        }
        let router = CoordinatorRoutes.build(
            registry: registry, adminToken: config.adminToken, api: api,
            metrics: MetricsEndpoint(metrics: metrics, nodes: registry, logger: logger, jobCounts: jobCounts, events: events),
            logger: logger,
            web: WebRoutes(events: EventStreamResponder(hub: events), monitor: monitor, assets: .bundled(), contract: contract),
            ready: ready)
        let logger = self.logger
        let app = Application(
            router: router,
            server: FrameAPIServer.httpServer(idleTimeout: config.httpIdleTimeout, bodyTimeout: config.httpBodyTimeout),
            configuration: .init(address: .hostname(config.httpListen.host, port: config.httpListen.port),
                                 serverName: "frameflow-coordinator"),
            onServerRunning: { channel in
                let httpPort = channel.localAddress?.port ?? 0
                logger.info("HTTP API listening", metadata: ["port": "\(httpPort)"])
                await onRunning(httpPort, clusterPort)
            },
            logger: logger
        )
        // Graceful shutdown runs in reverse order: the scheduler stops last, after the
        // sessions have ended, and waits for its background work.
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        // Stops last: the liveness row is deleted only after the sessions gave their leases back.
        if let presence { services.append(.init(service: presence)) }
        if let scheduler { services.append(.init(service: scheduler)) }
        services += [.init(service: HeartbeatFlusher(registry: registry)), .init(service: listener), .init(service: app)]
        if let notifier { services.append(.init(service: notifier)) }
        if let api { services.append(.init(service: UploadSweep(api: api, logger: logger))) }
        // After the HTTP server: services stop in reverse order, and the feed closing the hub
        // ends the open event streams, which would otherwise hold the server's shutdown.
        if let jobFeed { services.append(.init(service: jobFeed)) }
        if let monitor { services.append(.init(service: monitor)) }
        if let sweeper { services.append(.init(service: RetentionSweeps(sweeper: sweeper, jobFeed: jobFeed, logger: logger))) }
        let group = ServiceGroup(
            configuration: .init(
                services: services, gracefulShutdownSignals: handleSignals ? [.sigterm, .sigint] : [], logger: logger))
        try await group.run()
    }
}

/// Runs the retention sweep every minute as a service.
struct RetentionSweeps: Service {
    let sweeper: RetentionSweeper
    /// Told of expired jobs, so their owners' pages show EXPIRED.
    var jobFeed: JobChangeFeed? = nil
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do { for id in try await sweeper.sweep() { jobFeed?.changed(id) } } catch {
                    logger.error("retention sweep failed", metadata: ["error": "\(error)"])
                }
                try? await Task.sleep(for: .seconds(60))
            }
        }
    }
}

/// Writes the node registry's batched heartbeats a few times a second.
struct HeartbeatFlusher: Service {
    let registry: NodeRegistry
    var interval: Duration = .milliseconds(250)

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                await registry.flushHeartbeats()
            }
        }
        // What came in last is still written.
        await registry.flushHeartbeats()
    }
}
