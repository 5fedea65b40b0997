import FrameCluster
import FrameWire
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import ServiceLifecycle
import Synchronization

/// Accepts node connections on the cluster port (mutual TLS) and runs one
/// ``NodeSession`` per connection.
///
/// Binding is separate from running so the caller learns the actual port
/// (tests bind port 0) before serving starts.
public final class NodeListener: Service, Sendable {
    /// Connections accepted and wrapped but not yet handed to a session. One accepted while the
    /// listener stops stays in the server's buffer; dropped there unclosed, NIO traps ("Deinited
    /// NIOAsyncWriter without calling finish()"), so the listener closes what is left itself.
    final class Unclaimed: Sendable {
        private let connections = Mutex<[ObjectIdentifier: FrameChannel.Async]>([:])
        func accepted(_ connection: FrameChannel.Async) {
            connections.withLock { $0[ObjectIdentifier(connection.channel)] = connection }
        }
        func claim(_ connection: FrameChannel.Async) {
            _ = connections.withLock { $0.removeValue(forKey: ObjectIdentifier(connection.channel)) }
        }
        func takeAll() -> [FrameChannel.Async] {
            connections.withLock { all in defer { all = [:] }; return Array(all.values) }
        }
        var count: Int { connections.withLock { $0.count } }
    }

    private let server: NIOAsyncChannel<FrameChannel.Async, Never>
    /// Accepted connections no session has taken yet (tests read its count).
    let unclaimed: Unclaimed
    private let registry: NodeRegistry
    private let work: (any NodeWorkHandler)?
    private let settings: SessionSettings
    private let logger: Logger

    /// The port actually bound.
    public var port: Int { server.channel.localAddress?.port ?? 0 }

    private init(server: NIOAsyncChannel<FrameChannel.Async, Never>, unclaimed: Unclaimed, registry: NodeRegistry,
                 work: (any NodeWorkHandler)?, settings: SessionSettings, logger: Logger) {
        self.server = server
        self.unclaimed = unclaimed
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
        let unclaimed = Unclaimed()
        let server = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .bind(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls))
                    try FrameChannel.addCodec(
                        to: channel, maxFrameLength: maxFrame, readTimeout: nil, heartbeats: heartbeats)
                    let connection = try FrameChannel.wrap(channel)
                    unclaimed.accepted(connection)
                    return connection
                }
            }
        return NodeListener(server: server, unclaimed: unclaimed, registry: registry, work: work, settings: settings,
                            logger: logger)
    }

    public func run() async throws {
        logger.info("listening for nodes", metadata: ["port": "\(port)"])
        try await withTaskCancellationOrGracefulShutdownHandler {
            do {
                try await serve()
            } catch {
                await closeUnclaimed()
                throw error
            }
            await closeUnclaimed()
        } onCancelOrGracefulShutdown: {
            self.server.channel.close(promise: nil)
        }
    }

    /// Accepted while the listener stopped (or its accept loop was cancelled): closed unserved.
    private func closeUnclaimed() async {
        for connection in unclaimed.takeAll() {
            try? await connection.executeThenClose { _, _ in }
        }
    }

    private func serve() async throws {
        try await withThrowingDiscardingTaskGroup { group in
            try await server.executeThenClose { inbound in
                for try await connection in inbound {
                    unclaimed.claim(connection)
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
    }
}
