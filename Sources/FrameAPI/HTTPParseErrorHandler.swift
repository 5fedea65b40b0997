import FrameCore
import Foundation
import HTTPTypes
import NIOCore
import NIOHTTP1
import NIOHTTPTypes

/// Answers a request the HTTP parser could not read (a header block over the
/// limit, a malformed request line, bad chunked framing) with a problem
/// document like every other error, 431 HEADERS_TOO_LARGE or 400
/// MALFORMED_REQUEST, then closes the connection.
///
/// Such errors happen before any route runs, so without this handler the
/// answer is whatever the framework writes (an empty 400, the parser's own
/// error name). Only a parse error between requests is answered here: once a
/// request head has been handed on, its route owns the answer (a body that
/// breaks off mid-way surfaces as a read error there, which
/// ``RequestGuardMiddleware`` turns into 400), so the error is passed on.
///
/// Sits after `HTTP1ToHTTPServerCodec`, one per connection.
public final class HTTPParseErrorHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = HTTPRequestPart
    public typealias InboundOut = HTTPRequestPart
    public typealias OutboundIn = HTTPResponsePart
    public typealias OutboundOut = HTTPResponsePart

    /// Whether a route is working on a request (head read, response not ended).
    private var inRequest = false
    private var answered = false

    public init() {}

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head = unwrapInboundIn(data) { inRequest = true }
        context.fireChannelRead(data)
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { inRequest = false }
        context.write(data, promise: promise)
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parseError = error as? HTTPParserError, !inRequest else {
            context.fireErrorCaught(error)
            return
        }
        guard !answered else { return }
        answered = true
        let problem = Self.problem(for: parseError)
        var fields = HTTPFields()
        fields[.contentType] = "application/problem+json"
        fields[.contentLength] = String(problem.body.count)
        fields[.connection] = "close"
        SecurityHeaders.apply(to: &fields)
        context.write(wrapOutboundOut(.head(HTTPResponse(status: problem.status, headerFields: fields))), promise: nil)
        context.write(wrapOutboundOut(.body(ByteBuffer(bytes: problem.body))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in context.close(promise: nil) }
    }

    /// The status and problem+json body for a parse error; nothing of the parser's own naming.
    static func problem(for error: HTTPParserError) -> (status: HTTPResponse.Status, body: [UInt8]) {
        let (status, code, detail): (HTTPResponse.Status, ErrorCode, String) = switch error {
        case .headerOverflow:
            (.requestHeaderFieldsTooLarge, .headersTooLarge, "the request's headers are larger than the server accepts")
        default:
            (.badRequest, .malformedRequest, "the request is not valid HTTP/1.1")
        }
        let problem = APIError.Problem(title: status.reasonPhrase, status: status.code, code: code.name, detail: detail)
        return (status, Array((try? JSONEncoder().encode(problem)) ?? Data()))
    }
}
