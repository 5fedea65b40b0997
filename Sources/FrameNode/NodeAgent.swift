import FrameCluster
import FrameCore
import FrameWire
import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import ServiceLifecycle
import Synchronization

/// The node process's connection to the coordinator: connect over mutual
/// TLS, HELLO/WELCOME, heartbeat every interval, detect a silent coordinator,
/// and reconnect with capped, jittered exponential backoff for as long as the
/// process runs, so a coordinator restart needs no operator.
public final class NodeAgent: Service, Sendable {
    /// Why the agent stopped for good.
    public struct Stopped: Error, CustomStringConvertible {
        public var code: ErrorCode
        public var reason: String
        public var description: String { "\(code.name): \(reason)" }
    }

    public let name: String
    private let config: NodeConfig
    private let runner: any LeaseRunner
    private let logger: Logger
    private let softwareVersion: String
    private let tls: NIOSSLContext
    private let resolver: any CoordinatorResolver
    /// The connection of the session up now, for ``dropConnection()``.
    private let liveChannel = Mutex<(any Channel)?>(nil)

    /// `resolver` turns each configured coordinator host into the addresses to dial (default:
    /// the system's; tests give their own).
    public init(
        config: NodeConfig, runner: any LeaseRunner, softwareVersion: String, logger: Logger,
        resolver: any CoordinatorResolver = SystemCoordinatorResolver()
    ) throws {
        self.resolver = resolver
        let certName = try? PeerIdentity.commonName(pemFile: config.tls.certificate.path)
        guard let name = config.name ?? certName else {
            throw ConfigError(key: "node.name", problem: "not set and the certificate has no common name",
                              source: config.tls.certificate.path)
        }
        if let certName, certName != name {
            throw ConfigError(key: "node.name",
                              problem: "'\(name)' differs from the certificate's common name '\(certName)'",
                              source: "configuration")
        }
        self.name = name
        self.config = config
        self.runner = runner
        self.softwareVersion = softwareVersion
        var logger = logger
        logger[metadataKey: "node"] = "\(name)"
        self.logger = logger
        self.tls = try TLSContexts.node(config.tls)
    }

    /// Closes the current connection, if there is one; the agent reconnects as after any drop
    /// (and the coordinator sees a node vanish). The node simulator's disconnect model uses it.
    public func dropConnection() {
        liveChannel.withLock { $0 }?.close(promise: nil)
    }

    public func run() async throws {
        // The runner's background work lives as long as the connection loop, as a child of this task.
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { await self.runner.run() }
            defer { group.cancelAll() }
            try await connectUntilStopped()
        }
    }

    private func connectUntilStopped() async throws {
        var backoff = ReconnectBackoff(initial: .milliseconds(500), maximum: config.reconnectMaxBackoff)
        var rotation = CoordinatorRotation(addresses: config.coordinatorAddresses)
        try await withGracefulShutdownHandler {
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                var established = false
                let target = rotation.current
                if case .resolve = rotation.next {
                    do { rotation.resolved(try await resolver.addresses(of: target.host)) } catch {
                        rotation.resolved([])
                        logger.warning("cannot resolve a coordinator's name", metadata: ["coordinator": "\(target)", "error": "\(error)"])
                    }
                }
                let ending: NodeConnectionStateMachine.Ending
                if case .dial(_, let address) = rotation.next {
                    ending = await connectOnce(to: target, address: address, onEstablished: { backoff.reset(); established = true })
                } else {
                    ending = .reconnect("\(target.host) resolves to no address")
                }
                switch ending {
                case .stop(let code, let reason):
                    logger.critical("node stopped by the coordinator", metadata: ["code": "\(code.name)", "reason": "\(reason)"])
                    throw Stopped(code: code, reason: reason)
                case .reconnect(let reason):
                    if Task.isShuttingDownGracefully || Task.isCancelled { return }
                    guard rotation.ended(established: established) else {
                        logger.warning("disconnected; trying the next coordinator", metadata: [
                            "reason": "\(reason)", "from": "\(target)", "to": "\(rotation.current)",
                        ])
                        continue
                    }
                    let delay = backoff.nextDelay()
                    logger.warning("disconnected; reconnecting", metadata: [
                        "reason": "\(reason)", "delay_ms": "\(delay.milliseconds)",
                    ])
                    // A SIGTERM during the backoff ends the wait (and the loop) at once.
                    try? await cancelWhenGracefulShutdown { try await Task.sleep(for: delay) }
                }
            }
        } onGracefulShutdown: {
            self.logger.notice("shutting down")
        }
    }

    /// One connection to `address` (one of `target`'s resolved addresses), from dialling to its end.
    private func connectOnce(
        to target: HostPort, address: String, onEstablished: () -> Void
    ) async -> NodeConnectionStateMachine.Ending {
        // The certificate is verified against the configured name, never the address it
        // resolved to (an IP literal name: against the IP, with no SNI).
        let serverName = config.serverName ?? (IPAddressCheck.isIPAddress(target.host) ? nil : target.host)
        let connection: FrameChannel.Async
        do {
            let tls = self.tls
            connection = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.seconds(5))
                // TCP level: .socketOption(.tcp_nodelay) would set SOL_SOCKET option 1, SO_DEBUG,
                // which needs CAP_NET_ADMIN: as the service user every connect failed with EACCES.
                .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                .connect(host: address, port: target.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            try NIOSSLClientHandler(context: tls, serverHostname: serverName))
                        try FrameChannel.addCodec(
                            to: channel, maxFrameLength: FrameCodec.defaultMaxFrameLength, readTimeout: nil)
                        return try FrameChannel.wrap(channel)
                    }
                }
        } catch {
            return .reconnect("cannot connect to \(target) at \(address): \(error)")
        }

        var ending: NodeConnectionStateMachine.Ending = .reconnect("connection closed by the coordinator")
        do {
            try await connection.executeThenClose { inbound, outbound in
                let channel = connection.channel
                liveChannel.withLock { $0 = channel }
                defer { liveChannel.withLock { $0 = nil } }
                let send: @Sendable (Message) async throws -> Void = { try await outbound.write($0) }
                // Version 2 only adds LEASE_URL: a node that must not read from the store stays at 1.
                let versions: ClosedRange<UInt16> = config.directReads
                    ? ProtocolVersion.supported : ProtocolVersion.supported.lowerBound...1
                try await outbound.write(.hello(Hello(
                    minVersion: versions.lowerBound, maxVersion: versions.upperBound,
                    nodeName: name, softwareVersion: softwareVersion, slots: UInt16(clamping: config.slots),
                    labels: config.labels.sorted { $0.key < $1.key }.map { Label(key: $0.key, value: $0.value) },
                    heldLeases: await runner.heldLeases())))

                let lastHeard = LastHeard()
                var machine = NodeConnectionStateMachine(versions: versions)
                try await withThrowingTaskGroup(of: Void.self) { group in
                    // Until WELCOME, the handshake timeout bounds the silence;
                    // after it, the coordinator's heartbeat timeout.
                    group.addTask { try await Self.watchdog(lastHeard: lastHeard, channel: channel) }
                    group.addTask { [runner, logger, grace = config.shutdownGrace] in
                        try await gracefulShutdown()
                        await Self.leave(
                            outbound: outbound, channel: channel, established: await lastHeard.established,
                            runner: runner, grace: grace, logger: logger)
                    }
                    defer { group.cancelAll() }
                    for try await message in inbound {
                        await lastHeard.touch()
                        switch machine.receive(message) {
                        case .established(let welcome):
                            onEstablished()
                            let interval = Duration.milliseconds(Int64(welcome.heartbeatIntervalMillis))
                            let timeout = Duration.milliseconds(Int64(welcome.heartbeatTimeoutMillis))
                            logger.info("connected to the coordinator", metadata: [
                                "coordinator": "\(welcome.coordinatorID)", "protocol": "\(welcome.version)",
                                "heartbeat_ms": "\(welcome.heartbeatIntervalMillis)",
                            ])
                            await runner.attach(send: send, resumed: welcome.resumedLeases)
                            await lastHeard.markEstablished()
                            let runner = self.runner
                            group.addTask {
                                var sequence: UInt64 = 0
                                while true {
                                    sequence += 1
                                    let figures = await runner.figures()
                                    try await outbound.write(.heartbeat(Heartbeat(
                                        sequence: sequence, activeLeases: UInt16(clamping: figures.activeLeases),
                                        framesTotal: figures.framesTotal)))
                                    try await Task.sleep(for: interval)
                                }
                            }
                            await lastHeard.setTimeout(timeout)
                        case .alive:
                            break
                        case .deliver(let m):
                            await runner.handle(m)
                        case .drain(let reason):
                            logger.notice("draining", metadata: ["reason": "\(reason)"])
                            await runner.drain()
                        case .end(let e):
                            ending = e
                            return
                        case .violation(let code, let text):
                            try? await outbound.write(.error(ErrorMessage(code: code.rawValue, fatal: true, message: text, lease: nil)))
                            ending = .reconnect("protocol violation by the coordinator: \(text)")
                            return
                        }
                    }
                    if await lastHeard.timedOut {
                        ending = .reconnect("no frame from the coordinator within the heartbeat timeout")
                    }
                }
            }
        } catch {
            if case .reconnect = ending { ending = .reconnect("connection error: \(error)") }
        }
        await runner.detach()
        return ending
    }

    /// A graceful shutdown (SIGTERM) with the session up, as proto-spec/handshake.md
    /// says: DRAIN (the coordinator leases nothing more), the running segments
    /// finish within `grace` or are handed back (SEGMENT_FAILED SHUTTING_DOWN,
    /// requeued uncharged), then GOODBYE and close. Before WELCOME only GOODBYE.
    private static func leave(
        outbound: NIOAsyncChannelOutboundWriter<Message>, channel: any Channel, established: Bool,
        runner: any LeaseRunner, grace: Duration, logger: Logger
    ) async {
        if established {
            try? await outbound.write(.drain(Drain(reason: "node shutting down")))
            let handedBack = await runner.shutDown(grace: grace)
            logger.notice("shutting down: leases finished or handed back", metadata: [
                "handed_back": "\(handedBack)", "grace_ms": "\(grace.milliseconds)",
            ])
        } else {
            await runner.drain()
        }
        try? await outbound.write(.goodbye(Goodbye(message: "node shutting down")))
        try? await channel.close()
    }

    /// Closes the channel when nothing has been heard for `timeout`.
    private static func watchdog(lastHeard: LastHeard, channel: any Channel) async throws {
        while true {
            let timeout = await lastHeard.timeout
            try await Task.sleep(for: .milliseconds(max(50, timeout.milliseconds / 10)))
            if await lastHeard.silence() > timeout {
                await lastHeard.markTimedOut()
                try? await channel.close()
                return
            }
        }
    }
}

/// When the node last heard from the coordinator.
actor LastHeard {
    private var at = ContinuousClock.now
    /// Handshake timeout at first, the coordinator's heartbeat timeout after WELCOME.
    private(set) var timeout: Duration = .seconds(10)
    func setTimeout(_ t: Duration) { timeout = t }
    private(set) var timedOut = false
    func touch() { at = .now }
    func silence() -> Duration { ContinuousClock.now - at }
    func markTimedOut() { timedOut = true }
    /// WELCOME arrived (a shutdown then drains before GOODBYE).
    private(set) var established = false
    func markEstablished() { established = true }
}

/// Whether a host string is a literal IP address (TLS SNI must not carry one).
enum IPAddressCheck {
    static func isIPAddress(_ host: String) -> Bool {
        (try? SocketAddress(ipAddress: host, port: 0)) != nil
    }
}
