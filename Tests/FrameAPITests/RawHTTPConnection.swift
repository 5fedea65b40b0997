import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A plain TCP connection that speaks HTTP/1.1 by hand (tests only), for
/// exchanges a client library hides: interim `100 Continue` heads, or a
/// response that arrives before the body was sent.
final class RawHTTPConnection: Sendable {
    struct Timeout: Error {}

    private let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
    /// Everything received and not yet returned, and whether the server has closed.
    private let received = NIOLockedValueBox((bytes: ByteBuffer(), closed: false))
    private let reader: Task<Void, Never>

    static func connect(port: Int) async throws -> RawHTTPConnection {
        let channel = try await ClientBootstrap(group: NIOSingletons.posixEventLoopGroup)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        return RawHTTPConnection(channel: channel)
    }

    private init(channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>) {
        self.channel = channel
        let received = self.received
        reader = Task {
            do {
                for try await var chunk in channel.inbound {
                    received.withLockedValue { $0.bytes.writeBuffer(&chunk) }
                }
            } catch {}
            received.withLockedValue { $0.closed = true }
        }
    }

    func send(_ text: String) async throws {
        try await channel.outbound.write(ByteBuffer(string: text))
    }

    func send(_ bytes: ByteBuffer) async throws {
        try await channel.outbound.write(bytes)
    }

    /// The next response head (status line and fields, without the blank line), or nil when the
    /// server closed first; throws ``Timeout`` after `seconds`, so a server that never answers
    /// fails the test instead of hanging it.
    func readHead(within seconds: Double = 5) async throws -> String? {
        let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
        while true {
            let (head, closed): (String?, Bool) = received.withLockedValue { state in
                guard let range = state.bytes.readableBytesView.firstRange(of: Array("\r\n\r\n".utf8)) else {
                    return (nil, state.closed)
                }
                let head = state.bytes.readString(length: range.lowerBound - state.bytes.readerIndex)
                state.bytes.moveReaderIndex(forwardBy: 4)
                return (head, state.closed)
            }
            if let head { return head }
            if closed { return nil }
            guard ContinuousClock.now < deadline else { throw Timeout() }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    /// Bytes received after the last head (a response body, say).
    var unreadBytes: Int { received.withLockedValue { $0.bytes.readableBytes } }

    /// Ends the request side (TCP half-close): the server sees the end of the body it was reading.
    func finishSending() async throws {
        try await channel.channel.close(mode: .output)
    }

    /// Whether the server has closed the connection.
    var isClosed: Bool { received.withLockedValue { $0.closed } }

    /// The unread bytes as text (a response body after ``readHead(within:)``), waiting up to
    /// `seconds` for at least `count` of them.
    func readBody(count: Int, within seconds: Double = 5) async throws -> String {
        let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
        while unreadBytes < count {
            guard ContinuousClock.now < deadline, !isClosed || unreadBytes >= count else { break }
            try await Task.sleep(for: .milliseconds(5))
        }
        return received.withLockedValue { state in
            state.bytes.readString(length: min(count, state.bytes.readableBytes)) ?? ""
        }
    }

    func close() async {
        try? await channel.channel.close()
        await reader.value
    }
}
