import FrameCore
import HTTPTypes
import NIOCore
import NIOHTTPTypes

/// Closes a connection whose client stops sending the body of its request:
/// no byte for `timeout` while the server is asking for more.
///
/// The idle timeout covers connections between requests; during a request a
/// client that announces a large body and then sends nothing (or a byte a
/// minute) would otherwise hold the connection, the partial upload file and
/// its quota reservation for ever. Only time the server spends *waiting for
/// the client* counts: the clock starts when the pipeline asks for more bytes
/// (`read`) and stops when any arrive, so an upload slowed by a slow disk
/// (back-pressure: the server stops asking) is never cut. When no response
/// has started, the client is told 408 REQUEST_TIMEOUT first; the route
/// reading the body sees the connection close and cleans up.
///
/// Sits after `HTTP1ToHTTPServerCodec`, one per connection.
public final class BodyReadTimeoutHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = HTTPRequestPart
    public typealias InboundOut = HTTPRequestPart
    public typealias OutboundIn = HTTPResponsePart
    public typealias OutboundOut = HTTPResponsePart

    let timeout: TimeAmount
    /// A request head was read and its end not yet.
    private var inBody = false
    /// A response head was written for the current request.
    private var responding = false
    /// When the pipeline asked for bytes that have not come yet.
    private var waitingSince: NIODeadline?
    private var check: Scheduled<Void>?

    public init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        waitingSince = nil
        switch unwrapInboundIn(data) {
        case .head: inBody = true; responding = false
        case .end: inBody = false
        case .body: break
        }
        context.fireChannelRead(data)
    }

    public func read(context: ChannelHandlerContext) {
        if inBody, waitingSince == nil {
            let now = context.eventLoop.now
            waitingSince = now
            schedule(context, at: now + timeout)
        }
        context.read()
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .head(let head) = unwrapOutboundIn(data), head.status.kind != .informational { responding = true }
        context.write(data, promise: promise)
    }

    public func channelInactive(context: ChannelHandlerContext) {
        check?.cancel()
        check = nil
        context.fireChannelInactive()
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        check?.cancel()
        check = nil
    }

    private func schedule(_ context: ChannelHandlerContext, at deadline: NIODeadline) {
        guard check == nil else { return }
        check = context.eventLoop.assumeIsolatedUnsafeUnchecked().scheduleTask(deadline: deadline) { [self] in
            check = nil
            guard inBody, let since = waitingSince else { return }
            let due = since + timeout
            guard context.eventLoop.now >= due else {
                schedule(context, at: due)
                return
            }
            inBody = false
            if responding {
                context.close(promise: nil)
            } else {
                HTTPParseErrorHandler.answerAndClose(
                    context: context, status: .requestTimeout, code: .requestTimeout,
                    detail: "no part of the request body arrived for \(timeout.nanoseconds / 1_000_000_000) s")
            }
        }
    }
}
