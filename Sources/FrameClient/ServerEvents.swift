import FrameCore
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// One server-sent event: its name (`message` unless the stream said otherwise), its data
/// lines joined with newlines, and the stream's last event id when it was dispatched.
public struct ServerEvent: Sendable, Equatable {
    public var name: String
    public var data: String
    public var lastEventID: String?

    public init(name: String, data: String, lastEventID: String?) {
        self.name = name
        self.data = data
        self.lastEventID = lastEventID
    }
}

/// The `text/event-stream` format (WHATWG HTML, "server-sent events") as a value: feed it
/// bytes as they arrive, in chunks cut anywhere, and it returns the events they complete.
///
/// Lines end with LF, CRLF or CR; `:` lines are comments (the coordinator's keep-alives); an
/// empty line dispatches the event being built, unless it has no data. `id` persists across
/// events (it is what a reconnect sends as `Last-Event-ID`); `retry` is the server's
/// reconnection delay in milliseconds.
public struct EventStreamParser: Sendable {
    private var line: [UInt8] = []
    /// The previous chunk ended with CR: an LF at the start of the next one belongs to it.
    private var afterCR = false
    private var data: [String] = []
    private var name = ""
    public private(set) var lastEventID: String?
    public private(set) var retry: Int?

    public init() {}

    public mutating func feed<Bytes: Sequence>(_ bytes: Bytes) -> [ServerEvent] where Bytes.Element == UInt8 {
        var events: [ServerEvent] = []
        for byte in bytes {
            if afterCR {
                afterCR = false
                if byte == 0x0A { continue }
            }
            switch byte {
            case 0x0D:
                afterCR = true
                if let event = endLine() { events.append(event) }
            case 0x0A:
                if let event = endLine() { events.append(event) }
            default:
                line.append(byte)
            }
        }
        return events
    }

    private mutating func endLine() -> ServerEvent? {
        defer { line.removeAll(keepingCapacity: true) }
        if line.isEmpty {
            defer { data = []; name = "" }
            guard !data.isEmpty else { return nil }
            return ServerEvent(name: name.isEmpty ? "message" : name, data: data.joined(separator: "\n"), lastEventID: lastEventID)
        }
        let text = String(decoding: line, as: UTF8.self)
        if text.hasPrefix(":") { return nil }
        let field: Substring, value: Substring
        if let colon = text.firstIndex(of: ":") {
            field = text[..<colon]
            var rest = text[text.index(after: colon)...]
            if rest.first == " " { rest = rest.dropFirst() }
            value = rest
        } else {
            field = Substring(text)
            value = ""
        }
        switch field {
        case "event": name = String(value)
        case "data": data.append(String(value))
        case "id" where !value.contains("\0"): lastEventID = String(value)
        case "retry" where !value.isEmpty && value.allSatisfy(\.isASCII) && value.allSatisfy(\.isNumber): retry = Int(value)
        default: break
        }
        return nil
    }
}

/// The events of one open `GET /events` stream, in order: it ends when the server ends the
/// stream and throws when the connection breaks (or stays silent past the keep-alives).
/// Iterate it once, inside ``UserClient/withEvents(lastEventID:_:)``.
public struct ServerEventStream: AsyncSequence {
    public typealias Element = ServerEvent
    typealias Inbound = NIOAsyncChannelInboundStream<HTTPClientResponsePart>
    /// The connection's one iterator, past the answer's head.
    let rest: Inbound.AsyncIterator

    public struct AsyncIterator: AsyncIteratorProtocol {
        var parts: Inbound.AsyncIterator
        var parser = EventStreamParser()
        var pending: [ServerEvent] = []

        public mutating func next() async throws -> ServerEvent? {
            while pending.isEmpty {
                switch try await parts.next() {
                case .body(let buffer)?: pending = parser.feed(buffer.readableBytesView)
                case .head?: continue
                case .end?, nil: return nil
                }
            }
            return pending.removeFirst()
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(parts: rest) }
}

extension UserClient {
    /// Opens the caller's event stream (`GET /events`, the server's push of job changes),
    /// resuming after `lastEventID` when given, and runs `body` with its events; the connection
    /// is closed when `body` returns. Throws an ``APIFailure`` before `body` runs when the stream
    /// cannot be opened: no answer, or an answer that is not a 200 `text/event-stream` (with the
    /// problem document's code), so a caller can tell "no push here" from a stream that broke.
    /// A 401 renews the access token once, like every call.
    ///
    /// On SwiftNIO rather than URLSession: Foundation's URLSession on Linux keeps a core busy
    /// while a response stays open without data, which is what an event stream mostly does.
    public func withEvents<T: Sendable>(
        lastEventID: String? = nil, _ body: (ServerEventStream) async throws -> T
    ) async throws -> T {
        do {
            return try await Self.withEventStream(baseURL, token: accessToken, lastEventID: lastEventID, body)
        } catch let failure as APIFailure where failure.httpStatus == 401 {
            guard try await renew() else { throw failure }
            return try await Self.withEventStream(baseURL, token: accessToken, lastEventID: lastEventID, body)
        }
    }

    /// Silence longer than this (the server's keep-alive comes every 15 s) means the connection is dead.
    static let eventStreamIdleTimeout: TimeAmount = .seconds(60)

    static func withEventStream<T: Sendable>(
        _ base: URL, token: String?, lastEventID: String?, _ body: (ServerEventStream) async throws -> T
    ) async throws -> T {
        guard let scheme = base.scheme?.lowercased(), scheme == "http" || scheme == "https", let host = base.host, !host.isEmpty else {
            throw APIFailure(httpStatus: nil, code: .internalError, message: "the coordinator URL \(base) is not http(s)://HOST")
        }
        let https = scheme == "https"
        let port = base.port ?? (https ? 443 : 80)
        var target = base.path
        if !target.hasSuffix("/") { target += "/" }
        target += "events"
        let channel: NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>
        do {
            let tls: NIOSSLContext? = https ? try NIOSSLContext(configuration: .makeClientConfiguration()) : nil
            channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.seconds(10))
                .connect(host: host, port: port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let tls {
                            let name = host.contains(":") || host.allSatisfy({ $0.isNumber || $0 == "." }) ? nil : host
                            try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: tls, serverHostname: name))
                        }
                        try channel.pipeline.syncOperations.addHandlers([
                            IdleStateHandler(readTimeout: eventStreamIdleTimeout), CloseOnReadIdle(),
                        ])
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            throw APIFailure.unreachable(base, error)
        }
        return try await channel.executeThenClose { inbound, outbound in
            var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: target)
            head.headers.add(name: "Host", value: port == (https ? 443 : 80) ? host : "\(host):\(port)")
            head.headers.add(name: "Accept", value: "text/event-stream")
            head.headers.add(name: "User-Agent", value: "frameflow")
            if let token { head.headers.add(name: "Authorization", value: "Bearer \(token)") }
            if let lastEventID { head.headers.add(name: "Last-Event-ID", value: lastEventID) }
            do {
                try await outbound.write(.head(head))
                try await outbound.write(.end(nil))
            } catch {
                throw APIFailure.unreachable(base, error)
            }
            // The answer's head decides: a stream, or a refusal read to its end for its problem document.
            var parts = inbound.makeAsyncIterator()
            var response: HTTPResponseHead?
            var refusal = ByteBuffer()
            do {
                while let part = try await parts.next() {
                    switch part {
                    case .head(let h):
                        response = h
                        let type = h.headers.first(name: "Content-Type")?.lowercased() ?? ""
                        if h.status == .ok, type.hasPrefix("text/event-stream") { return try await body(ServerEventStream(rest: parts)) }
                    case .body(var chunk):
                        if refusal.readableBytes < 64 * 1024 { refusal.writeBuffer(&chunk) }
                    case .end:
                        break
                    }
                    if case .end = part { break }
                }
            } catch let failure as APIFailure {
                throw failure
            } catch where response == nil {
                throw APIFailure.unreachable(base, error)
            }
            guard let response else {
                throw APIFailure(httpStatus: nil, code: .internalError, message: "\(base) closed the connection without an answer")
            }
            let status = Int(response.status.code)
            if status == 200 {
                throw APIFailure(httpStatus: 200, code: .internalError, message: "GET /events did not answer text/event-stream")
            }
            return try { () throws(APIFailure) -> T in
                throw APIFailure.from(status: status, body: Data(refusal.readableBytesView), retryAfter: response.headers.first(name: "Retry-After"))
            }()
        }
    }
}

/// Closes the connection when ``IdleStateHandler`` reports a silent read side.
final class CloseOnReadIdle: ChannelInboundHandler, Sendable {
    typealias InboundIn = NIOAny

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }
}
