import FrameAPI
import FrameCluster
import FrameCore
import FrameStore
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
    private let jobCounts: (@Sendable () async throws -> [JobStatus: Int])?
    private let ready: @Sendable () async -> Bool

    /// A coordinator that schedules jobs stored in `database`.
    public init(config: CoordinatorConfig, database: Database, logger: Logger) {
        let layout = StorageLayout(uploads: config.uploadsDirectory, spool: config.spoolDirectory, results: config.resultsDirectory)
        let metrics = CoordinatorMetrics()
        let scheduler = LeaseScheduler(
            database: database, layout: layout, leaseTTL: config.leaseTTL, retentionDays: config.retentionDays,
            resumeGrace: config.leaseResumeGrace, logger: logger, metrics: metrics)
        let jobs = JobStore(database: database)
        self.init(
            config: config, directory: PostgresNodeDirectory(database: database), scheduler: scheduler,
            ingestor: MediaIngestor(
                database: database, segmentSeconds: config.segmentSeconds, maxAttempts: config.maxAttempts,
                maxNodeLosses: config.maxNodeLosses, metrics: metrics,
                onNewJob: { await scheduler.jobArrived() }),
            sweeper: RetentionSweeper(database: database, layout: layout, logger: logger),
            recovery: StorageRecovery(database: database, layout: layout, logger: logger),
            layout: layout, logger: logger, metrics: metrics, jobCounts: { try await jobs.statusCounts() },
            notifier: NotificationDispatcher(database: database, config: config.notifications, logger: logger),
            ready: { await database.ping() })
    }

    /// A coordinator with only node sessions (no scheduling), e.g. for transport tests.
    public init(
        config: CoordinatorConfig, directory: any NodeDirectory, scheduler: LeaseScheduler? = nil,
        ingestor: MediaIngestor? = nil, sweeper: RetentionSweeper? = nil, recovery: StorageRecovery? = nil,
        layout: StorageLayout? = nil, logger: Logger,
        api: FrameAPIServer? = nil, metrics: CoordinatorMetrics? = nil,
        jobCounts: (@Sendable () async throws -> [JobStatus: Int])? = nil, notifier: NotificationDispatcher? = nil,
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
        self.ready = ready
    }

    /// Binds both listeners, calls `onRunning` with the actual ports, and serves until shutdown.
    public func run(
        handleSignals: Bool = true, onRunning: @escaping @Sendable (_ httpPort: Int, _ clusterPort: Int) async -> Void = { _, _ in }
    ) async throws {
        try layout.prepare()
        // Before any listener opens: no upload can be in flight while orphans are judged.
        if let recovery {
            do { try await recovery.run() } catch {
                logger.error("start-up storage recovery failed; continuing", metadata: ["error": "\(error)"])
            }
        }
        let tls = try TLSContexts.coordinator(config.tls)
        let settings = SessionSettings(
            coordinatorID: ProcessInfo.processInfo.hostName,
            heartbeatInterval: config.heartbeatInterval, heartbeatTimeout: config.heartbeatTimeout,
            maxFrameLength: config.maxFrameBytes)
        let listener = try await NodeListener.bind(
            host: config.clusterListen.host, port: config.clusterListen.port, tls: tls,
            registry: registry, work: scheduler, settings: settings, logger: logger)
        let clusterPort = listener.port
        let router = CoordinatorRoutes.build(
            registry: registry, adminToken: config.adminToken, api: api,
            metrics: MetricsEndpoint(metrics: metrics, nodes: registry, logger: logger, jobCounts: jobCounts), ready: ready)
        let logger = self.logger
        let app = Application(
            router: router,
            server: FrameAPIServer.httpServer,
            configuration: .init(address: .hostname(config.httpListen.host, port: config.httpListen.port),
                                 serverName: "frameflow-coordinator"),
            onServerRunning: { channel in
                let httpPort = channel.localAddress?.port ?? 0
                logger.info("HTTP API listening", metadata: ["port": "\(httpPort)"])
                await onRunning(httpPort, clusterPort)
            },
            logger: logger
        )
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: listener), .init(service: app)]
        if let notifier { services.append(.init(service: notifier)) }
        if let api { services.append(.init(service: UploadSweep(api: api, logger: logger))) }
        if let scheduler { services.append(.init(service: SchedulerTicks(scheduler: scheduler, sweeper: sweeper, logger: logger))) }
        let group = ServiceGroup(
            configuration: .init(
                services: services, gracefulShutdownSignals: handleSignals ? [.sigterm, .sigint] : [], logger: logger))
        try await group.run()
    }
}

/// Runs the scheduler's periodic tick (reaper and dispatch) and the
/// retention sweep (every minute) as a service.
struct SchedulerTicks: Service {
    let scheduler: LeaseScheduler
    let sweeper: RetentionSweeper?
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                group.addTask { await scheduler.runTicks() }
                if let sweeper {
                    group.addTask {
                        while !Task.isCancelled {
                            do { try await sweeper.sweep() } catch {
                                logger.error("retention sweep failed", metadata: ["error": "\(error)"])
                            }
                            try? await Task.sleep(for: .seconds(60))
                        }
                    }
                }
            }
        }
    }
}
