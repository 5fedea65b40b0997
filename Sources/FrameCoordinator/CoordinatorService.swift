import FrameAPI
import FrameCluster
import FrameCore
import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

/// The coordinator process: the node listener and the HTTP API, run together
/// under one service group with graceful shutdown on SIGTERM/SIGINT.
public struct CoordinatorService: Sendable {
    public let config: CoordinatorConfig
    public let registry: NodeRegistry
    public let logger: Logger
    /// The user-facing API mounted next to the operator routes; nil serves only /health, /ready and /admin.
    public let api: FrameAPIServer?
    private let ready: @Sendable () async -> Bool

    public init(config: CoordinatorConfig, directory: any NodeDirectory, logger: Logger,
                api: FrameAPIServer? = nil, ready: @escaping @Sendable () async -> Bool = { true }) {
        self.config = config
        self.registry = NodeRegistry(directory: directory, logger: logger)
        self.logger = logger
        self.api = api
        self.ready = ready
    }

    /// Binds both listeners, calls `onRunning` with the actual ports, and serves until shutdown.
    public func run(
        handleSignals: Bool = true, onRunning: @escaping @Sendable (_ httpPort: Int, _ clusterPort: Int) async -> Void = { _, _ in }
    ) async throws {
        let tls = try TLSContexts.coordinator(config.tls)
        let settings = SessionSettings(
            coordinatorID: ProcessInfo.processInfo.hostName,
            heartbeatInterval: config.heartbeatInterval, heartbeatTimeout: config.heartbeatTimeout,
            maxFrameLength: config.maxFrameBytes)
        let listener = try await NodeListener.bind(
            host: config.clusterListen.host, port: config.clusterListen.port, tls: tls,
            registry: registry, work: nil, settings: settings, logger: logger)
        let clusterPort = listener.port
        let router = CoordinatorRoutes.build(registry: registry, adminToken: config.adminToken, api: api, ready: ready)
        let logger = self.logger
        let app = Application(
            router: router,
            configuration: .init(address: .hostname(config.httpListen.host, port: config.httpListen.port),
                                 serverName: "frameflow-coordinator"),
            onServerRunning: { channel in
                let httpPort = channel.localAddress?.port ?? 0
                logger.info("HTTP API listening", metadata: ["port": "\(httpPort)"])
                await onRunning(httpPort, clusterPort)
            },
            logger: logger
        )
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: listener), .init(service: app)],
                gracefulShutdownSignals: handleSignals ? [.sigterm, .sigint] : [],
                logger: logger))
        try await group.run()
    }
}
