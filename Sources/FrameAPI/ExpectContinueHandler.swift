import HTTPTypes
import NIOCore
import NIOHTTPTypes

/// Answers `Expect: 100-continue` with an interim `100 Continue`, but only
/// once the route starts reading the body (``ExpectContinueMiddleware``
/// fires ``SendContinue``).
///
/// curl and most HTTP libraries send large bodies with `Expect: 100-continue`
/// and then hold the body back until the server says go, or for a second when
/// it never does; a server that ignores the header makes every large upload
/// start a second late. Waiting for the route, rather than answering on the
/// head, keeps the header's point: a request the route turns away first (no
/// token, 401) is answered before the client has sent a byte of a 500 MB body.
/// A final response written before the body was asked for cancels the 100, as
/// RFC 9110 §10.1.1 requires (the client then closes or sends the body, which
/// Hummingbird drains).
///
/// Sits after `HTTP1ToHTTPServerCodec` (HTTP types parts), one per connection;
/// HTTP/1.1 reads one request at a time, so one pending flag is enough.
public final class ExpectContinueHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = HTTPRequestPart
    public typealias InboundOut = HTTPRequestPart
    public typealias OutboundIn = HTTPResponsePart
    public typealias OutboundOut = HTTPResponsePart

    /// The user outbound event that asks for the `100 Continue` (no effect
    /// when the current request did not expect one or it was already sent).
    public struct SendContinue: Sendable {
        public init() {}
    }

    /// Whether the request being handled still waits for its `100 Continue`.
    enum State: Equatable {
        /// No expectation, or it has been met (100 sent) or made moot (final response sent).
        case settled
        /// The head carried `Expect: 100-continue`; nothing has been answered yet.
        case awaitingBodyRead
    }

    private(set) var state = State.settled

    public init() {}

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head(let head) = unwrapInboundIn(data) {
            state = Self.expectsContinue(head) ? .awaitingBodyRead : .settled
        }
        context.fireChannelRead(data)
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .head(let response) = unwrapOutboundIn(data), response.status.kind != .informational {
            state = .settled
        }
        context.write(data, promise: promise)
    }

    public func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        guard event is SendContinue else {
            context.triggerUserOutboundEvent(event, promise: promise)
            return
        }
        guard state == .awaitingBodyRead else {
            promise?.succeed(())
            return
        }
        state = .settled
        context.writeAndFlush(wrapOutboundOut(.head(HTTPResponse(status: .continue))), promise: promise)
    }

    /// `Expect: 100-continue`, case-insensitively (the only expectation HTTP defines).
    static func expectsContinue(_ head: HTTPRequest) -> Bool {
        head.headerFields[values: .expect].contains { $0.lowercased() == "100-continue" }
    }
}
