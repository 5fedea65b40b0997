import FrameCluster
import FrameCore
import FrameWire
import Foundation
import NIOCore
import NIOPosix
import NIOSSL
@testable import FrameCoordinator

/// What a hostile node has heard from the coordinator so far.
actor Inbox {
    private(set) var messages: [Message] = []
    private(set) var closed = false

    func append(_ m: Message) { messages.append(m) }
    func markClosed() { closed = true }

    /// Polls until a message matches `predicate` (nil after `timeout`).
    func wait(timeout: Duration = .seconds(5), _ predicate: @Sendable (Message) -> Bool) async -> Message? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let m = messages.first(where: predicate) { return m }
            if closed { return nil }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return messages.first(where: predicate)
    }

    /// Waits until nothing new has arrived for `quiet`, the connection closed, or `timeout` passed.
    func settle(quiet: Duration = .milliseconds(400), timeout: Duration = .seconds(5)) async {
        let deadline = ContinuousClock.now + timeout
        var count = messages.count
        var since = ContinuousClock.now
        while ContinuousClock.now < deadline, !closed {
            try? await Task.sleep(for: .milliseconds(25))
            if messages.count != count {
                count = messages.count
                since = .now
            } else if ContinuousClock.now - since >= quiet {
                return
            }
        }
    }

    var leases: [Lease] { messages.compactMap { if case .lease(let l) = $0 { l } else { nil } } }
    var welcome: Welcome? { messages.lazy.compactMap { if case .welcome(let w) = $0 { w } else { nil } }.first }
}

/// A node with a valid certificate that says whatever the test wants over a
/// real mTLS session: `Message` values (the codec encodes any field value),
/// with heartbeats once WELCOME has arrived unless told otherwise.
final class HostileNode: Sendable {
    let inbox: Inbox
    private let outgoing: AsyncStream<Message>.Continuation
    private let task: Task<Void, Never>

    private init(outgoing: AsyncStream<Message>.Continuation, task: Task<Void, Never>, inbox: Inbox) {
        self.outgoing = outgoing
        self.task = task
        self.inbox = inbox
    }

    static func connect(port: Int, tls: TLSFiles, first: Message?, heartbeats: Bool = true) async throws -> HostileNode {
        let client = try await RawClient.connect(port: port, ca: tls.ca, cert: tls.certificate, key: tls.key)
        let (stream, continuation) = AsyncStream<Message>.makeStream()
        let inbox = Inbox()
        let task = Task {
            try? await client.channel.executeThenClose { inbound, outbound in
                if let first { try? await outbound.write(first) }
                await withTaskGroup(of: Void.self) { group in
                    group.addTask {
                        do { for try await m in inbound { await inbox.append(m) } } catch {}
                        await inbox.markClosed()
                    }
                    group.addTask {
                        for await m in stream { try? await outbound.write(m) }
                    }
                    if heartbeats {
                        group.addTask {
                            guard await inbox.wait(timeout: .seconds(10), { if case .welcome = $0 { true } else { false } }) != nil
                            else { return }
                            var sequence: UInt64 = 0
                            while !Task.isCancelled {
                                try? await outbound.write(.heartbeat(Heartbeat(sequence: sequence, activeLeases: 1, framesTotal: 0)))
                                sequence += 1
                                try? await Task.sleep(for: .milliseconds(500))
                            }
                        }
                    }
                    // The connection closed, or the test finished sending: either ends the session.
                    _ = await group.next()
                    group.cancelAll()
                }
            }
            await inbox.markClosed()
        }
        return HostileNode(outgoing: continuation, task: task, inbox: inbox)
    }

    func send(_ messages: [Message]) { for m in messages { outgoing.yield(m) } }

    /// Ends the session from our side and waits for it to be gone.
    func close() async {
        outgoing.finish()
        await task.value
    }
}

/// A TLS connection with no codec: for frames the codec cannot produce
/// (bad length prefixes, truncated or padded payloads, unknown types).
struct RawBytesNode {
    let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>

    static func connect(port: Int, tls: TLSFiles) async throws -> RawBytesNode {
        var config = TLSConfiguration.makeClientConfiguration()
        config.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(tls.ca.path))
        config.minimumTLSVersion = .tlsv13
        config.certificateChain = try NIOSSLCertificate.fromPEMFile(tls.certificate.path).map { .certificate($0) }
        config.privateKey = .privateKey(try NIOSSLPrivateKey(file: tls.key.path, format: .pem))
        let context = try NIOSSLContext(configuration: config)
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: context, serverHostname: nil))
                    return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        return RawBytesNode(channel: channel)
    }

    /// Writes `bytes`, then reads until the coordinator closes or `timeout`
    /// passes; returns the frames it sent (decoded) and whether it closed.
    func exchange(_ bytes: [ByteBuffer], timeout: Duration) async throws -> (messages: [Message], closed: Bool) {
        try await channel.executeThenClose { inbound, outbound in
            for b in bytes { try? await outbound.write(b) }
            let received = ByteCollector()
            let closed = await withTaskGroup(of: Bool.self) { group in
                group.addTask {
                    do { for try await chunk in inbound { await received.append(chunk) } } catch {}
                    return true
                }
                group.addTask {
                    try? await Task.sleep(for: timeout)
                    return false
                }
                let first = await group.next() ?? false
                group.cancelAll()
                return first
            }
            var buffer = await received.buffer
            var messages: [Message] = []
            while let m = try? FrameCodec.decodeFrame(from: &buffer, maxFrameLength: FrameCodec.defaultMaxFrameLength) {
                messages.append(m)
            }
            return (messages, closed)
        }
    }
}

actor ByteCollector {
    var buffer = ByteBuffer()
    func append(_ b: ByteBuffer) {
        var b = b
        buffer.writeBuffer(&b)
    }
}
