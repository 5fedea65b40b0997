import FrameCore
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// The body of an answer, read one piece at a time as it arrives (with TCP backpressure: nothing is
/// read ahead of the consumer beyond what NIO buffers).
public struct ResponseBody {
    var iterator: NIOAsyncChannelInboundStream<HTTPClientResponsePart>.AsyncIterator
    var finished = false

    /// The next piece of the body, or nil at its end.
    public mutating func next() async throws -> ByteBuffer? {
        if finished { return nil }
        while let part = try await iterator.next() {
            switch part {
            case .body(let buffer): return buffer
            case .end:
                finished = true
                return nil
            case .head: throw S3Error.invalidResponse("a second response head")
            }
        }
        throw S3Error.unavailable("the connection closed before the end of the answer")
    }

    /// The rest of the body, at most `limit` bytes (more is an error rather than unbounded memory).
    public mutating func collect(upTo limit: Int) async throws -> ByteBuffer {
        var all = ByteBuffer()
        while var piece = try await next() {
            guard all.readableBytes + piece.readableBytes <= limit else {
                throw S3Error.invalidResponse("answer body larger than \(limit) bytes")
            }
            all.writeBuffer(&piece)
        }
        return all
    }
}

/// One HTTP/1.1 exchange per connection (`Connection: close`), over TLS for `https`.
///
/// A connection per request keeps the client free of pooling state; against a store on the
/// same network the handshake is small next to the parts (MiB) FrameFlow moves per request.
struct HTTPTransport: Sendable {
    let host: String
    let port: Int
    let tls: NIOSSLContext?
    let connectTimeout: TimeAmount

    /// `tlsConfiguration` replaces the default client configuration (the system's trust roots); tests give their own CA.
    init(host: String, port: Int, https: Bool, connectTimeout: TimeAmount = .seconds(5), tlsConfiguration: TLSConfiguration? = nil) throws {
        self.host = host
        self.port = port
        self.tls = https ? try NIOSSLContext(configuration: tlsConfiguration ?? .makeClientConfiguration()) : nil
        self.connectTimeout = connectTimeout
    }

    /// Sends `head` and `body`, then hands the answer's head and body to `handle`.
    func execute<T: Sendable>(
        head: HTTPRequestHead, body: ByteBuffer?,
        _ handle: (HTTPResponseHead, inout ResponseBody) async throws -> T
    ) async throws -> T {
        let channel: NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>
        do {
            let tls = self.tls
            let host = self.host
            channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(connectTimeout)
                .channelOption(.socketOption(.so_reuseaddr), value: 1)
                .connect(host: host, port: port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let tls {
                            let name = host.allSatisfy({ $0.isNumber || $0 == "." || $0 == ":" }) ? nil : host
                            try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: tls, serverHostname: name))
                        }
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            throw S3Error.unavailable("cannot connect to \(host):\(port): \(error)")
        }
        do {
            return try await channel.executeThenClose { inbound, outbound in
                try await outbound.write(.head(head))
                if let body, body.readableBytes > 0 { try await outbound.write(.body(.byteBuffer(body))) }
                try await outbound.write(.end(nil))
                var iterator = inbound.makeAsyncIterator()
                var responseHead: HTTPResponseHead?
                // 100 Continue and other informational heads come before the real one.
                while let part = try await iterator.next() {
                    if case .head(let h) = part {
                        if h.status.code >= 200 || h.status.code < 100 {
                            responseHead = h
                            break
                        }
                        continue
                    }
                }
                guard let responseHead else { throw S3Error.unavailable("the store closed the connection without an answer") }
                var reader = ResponseBody(iterator: iterator)
                return try await handle(responseHead, &reader)
            }
        } catch let error as S3Error {
            throw error
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw S3Error.unavailable("request to \(host):\(port) failed: \(error)")
        }
    }
}

/// Runs `body`, cancelling it and throwing `S3Error.unavailable` when it takes longer than `limit`.
func withTimeout<T: Sendable>(_ limit: Duration, _ what: String, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await FrameCore.withTimeout(limit, what, timedOut: { S3Error.unavailable($0) }, body)
}
