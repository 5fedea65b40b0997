import Hummingbird
import NIOCore

/// Asks ``ExpectContinueHandler`` for the `100 Continue` when a route first
/// reads the body of a request that carries `Expect: 100-continue`.
///
/// It wraps the request body in a sequence whose first `next()` fires the
/// handler's event, so whichever route reads a body (uploads, JSON) lets the
/// client go on, and a route that answers without reading (401 from the auth
/// middleware) never does. Requests without the header pass untouched.
public struct ExpectContinueMiddleware: RouterMiddleware {
    public typealias Context = APIRequestContext

    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard ExpectContinueHandler.expectsContinue(request.head) else {
            return try await next(request, context)
        }
        var request = request
        let channel = context.channel
        request.body = RequestBody(asyncSequence: ContinueOnFirstRead(base: request.body) {
            channel.triggerUserOutboundEvent(ExpectContinueHandler.SendContinue(), promise: nil)
        })
        return try await next(request, context)
    }
}

/// A body that calls `onFirstRead` when it is first asked for bytes.
struct ContinueOnFirstRead: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let base: RequestBody
    let onFirstRead: @Sendable () -> Void

    struct AsyncIterator: AsyncIteratorProtocol {
        var base: RequestBody.AsyncIterator
        var onFirstRead: (@Sendable () -> Void)?

        mutating func next() async throws -> ByteBuffer? {
            if let onFirstRead {
                self.onFirstRead = nil
                onFirstRead()
            }
            return try await base.next()
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: base.makeAsyncIterator(), onFirstRead: onFirstRead)
    }
}
