import FrameCluster
import FrameCore
import FrameWire
import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
@testable import FrameCoordinator

/// An in-process coordinator node listener on an ephemeral port, with its own
/// throwaway CA, for transport tests.
final class TestCluster: Sendable {
    let ca: CertificateAuthority
    let coordinatorFiles: CertificateAuthority.IssuedFiles
    let registry: NodeRegistry
    let directory: InMemoryNodeDirectory
    let settings: SessionSettings
    let logger: Logger

    /// Timeouts are generous by default: the suite runs beside CPU-heavy media
    /// tests, and only the heartbeat-loss test needs a short one.
    init(heartbeatInterval: Duration = .milliseconds(500), heartbeatTimeout: Duration = .seconds(5)) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ff-cluster-\(UUID().uuidString)")
        ca = CertificateAuthority(directory: dir)
        coordinatorFiles = try ca.initialize()
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        self.logger = logger
        directory = InMemoryNodeDirectory()
        registry = NodeRegistry(directory: directory, logger: logger)
        settings = SessionSettings(
            coordinatorID: "test", heartbeatInterval: heartbeatInterval, heartbeatTimeout: heartbeatTimeout,
            maxFrameLength: FrameCodec.defaultMaxFrameLength)
    }

    var coordinatorTLS: TLSFiles {
        TLSFiles(ca: ca.caCertificateURL, certificate: coordinatorFiles.certificate, key: coordinatorFiles.key)
    }

    func nodeTLS(_ name: String, notValidAfter: Date? = nil, notValidBefore: Date? = nil) throws -> TLSFiles {
        let files = try ca.issueNode(name: name, notValidBefore: notValidBefore, notValidAfter: notValidAfter, force: true)
        return TLSFiles(ca: ca.caCertificateURL, certificate: files.certificate, key: files.key)
    }

    /// Binds a listener on 127.0.0.1:`port` (0 = ephemeral) and serves it in a task.
    func startListener(port: Int = 0) async throws -> (NodeListener, Task<Void, any Error>) {
        let listener = try await NodeListener.bind(
            host: "127.0.0.1", port: port, tls: try TLSContexts.coordinator(coordinatorTLS), registry: registry,
            work: nil, settings: settings, logger: logger)
        let task = Task { try await listener.run() }
        return (listener, task)
    }

    /// Waits until `condition` holds, polling, or fails after `timeout`.
    static func eventually(
        timeout: Duration = .seconds(10), _ what: String, _ condition: @Sendable () async throws -> Bool
    ) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TimeoutError(what: what)
    }

    struct TimeoutError: Error, CustomStringConvertible {
        var what: String
        var description: String { "timed out waiting for \(what)" }
    }
}

/// A hand-driven protocol client: TLS with whatever certificate a test wants,
/// the frame codec, and raw access to messages.
struct RawClient {
    let channel: FrameChannel.Async

    static func connect(port: Int, ca: URL, cert: URL?, key: URL?) async throws -> RawClient {
        var config = TLSConfiguration.makeClientConfiguration()
        config.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(ca.path))
        config.minimumTLSVersion = .tlsv13
        if let cert, let key {
            config.certificateChain = try NIOSSLCertificate.fromPEMFile(cert.path).map { .certificate($0) }
            config.privateKey = .privateKey(try NIOSSLPrivateKey(file: key.path, format: .pem))
        }
        let context = try NIOSSLContext(configuration: config)
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: context, serverHostname: nil))
                    try FrameChannel.addCodec(to: channel, maxFrameLength: FrameCodec.defaultMaxFrameLength, readTimeout: nil)
                    return try FrameChannel.wrap(channel)
                }
            }
        return RawClient(channel: channel)
    }

    static func hello(_ name: String, min: UInt16 = 1, max: UInt16 = 1) -> Message {
        .hello(Hello(minVersion: min, maxVersion: max, nodeName: name, softwareVersion: "test", slots: 1, labels: [], heldLeases: []))
    }

    /// Sends `messages`, then collects what the coordinator says until it
    /// closes the connection or `timeout` passes. A failed TLS handshake
    /// surfaces as an empty answer or a thrown error.
    func exchange(_ messages: [Message], timeout: Duration = .seconds(5)) async throws -> [Message] {
        try await channel.executeThenClose { inbound, outbound in
            // The coordinator may refuse and close before a write completes;
            // what it said before closing is what the test checks.
            for m in messages { try? await outbound.write(m) }
            let received = Received()
            try? await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for try await m in inbound { await received.append(m) }
                }
                group.addTask { try await Task.sleep(for: timeout) }
                _ = try await group.next()
                group.cancelAll()
            }
            return await received.messages
        }
    }
}

actor Received {
    var messages: [Message] = []
    func append(_ m: Message) { messages.append(m) }
}
