import FrameCluster
import FrameWire
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import ServiceLifecycle

/// Accepts node connections on the cluster port (mutual TLS) and runs one
/// ``NodeSession`` per connection.
///
/// Binding is separate from running so the caller learns the actual port
/// (tests bind port 0) before serving starts.
public final class NodeListener: Service, Sendable {
    private let server: NIOAsyncChannel<FrameChannel.Async, Never>
    private let registry: NodeRegistry
    private let work: (any NodeWorkHandler)?
    private let settings: SessionSettings
    private let logger: Logger

    /// The port actually bound.
    public var port: Int { server.channel.localAddress?.port ?? 0 }

    private init(server: NIOAsyncChannel<FrameChannel.Async, Never>, registry: NodeRegistry,
                 work: (any NodeWorkHandler)?, settings: SessionSettings, logger: Logger) {
        self.server = server
        self.registry = registry
        self.work = work
        self.settings = settings
        self.logger = logger
    }

    /// Binds the listener; connections are accepted once ``run()`` is called.
    public static func bind(
        host: String, port: Int, tls: NIOSSLContext, registry: NodeRegistry, work: (any NodeWorkHandler)?,
        settings: SessionSettings, logger: Logger, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> NodeListener {
        let readTimeout = TimeAmount.milliseconds(settings.heartbeatTimeout.milliseconds)
        let maxFrame = settings.maxFrameLength
        // One clock for all sessions: one beat timer and one silence sweep per event loop.
        let heartbeats = HeartbeatClock(
            interval: .milliseconds(settings.heartbeatInterval.milliseconds), readTimeout: readTimeout)
        let server = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .bind(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls))
                    try FrameChannel.addCodec(
                        to: channel, maxFrameLength: maxFrame, readTimeout: nil, heartbeats: heartbeats)
                    return try FrameChannel.wrap(channel)
                }
            }
        return NodeListener(server: server, registry: registry, work: work, settings: settings, logger: logger)
    }

    public func run() async throws {
        logger.info("listening for nodes", metadata: ["port": "\(port)"])
        try await withTaskCancellationOrGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { group in
                try await server.executeThenClose { inbound in
                    for try await connection in inbound {
                        group.addTask {
                            await NodeSession(
                                connection: connection, registry: self.registry, work: self.work,
                                settings: self.settings, logger: self.logger
                            ).run()
                        }
                    }
                }
                // Listener closed (shutdown): say goodbye to every live node.
                for node in await registry.liveNodes() {
                    await node.close(.shuttingDown, "coordinator shutting down")
                }
            }
        } onCancelOrGracefulShutdown: {
            self.server.channel.close(promise: nil)
        }
    }
}
