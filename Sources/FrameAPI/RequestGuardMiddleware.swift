import FrameCore
import Hummingbird
import Logging

/// The outermost middleware of the coordinator's router: what holds for every
/// request and every answer, whichever route (or none) handles it.
///
/// - Query parameters (names and decoded values) pass ``InputText``, or 422.
/// - A body that breaks off (shorter than its `Content-Length`, bad chunked
///   framing) is a 400 MALFORMED_REQUEST for whichever route reads it, not a
///   read error that would surface as 500.
/// - Every error becomes a problem document: Hummingbird's own (an unknown
///   route: 404 NOT_FOUND, or 405 METHOD_NOT_ALLOWED with `Allow` when the
///   path exists with other methods) as well as ours. A 5xx is logged here
///   with its cause and answered without it.
/// - Every answer carries ``SecurityHeaders``.
///
/// Add it to the router before any route (Hummingbird applies middleware to
/// routes added after it) and ``RouteTable/load(_:)`` the finished routes.
public struct RequestGuardMiddleware: RouterMiddleware {
    public typealias Context = APIRequestContext
    let routes: RouteTable
    let logger: Logger

    public init(routes: RouteTable, logger: Logger) {
        self.routes = routes
        self.logger = logger
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response: Response
        do {
            try Self.checkQuery(request)
            var request = request
            request.body = RequestBody(asyncSequence: MalformedBodyAsBadRequest(base: request.body))
            response = try await next(request, context)
        } catch {
            let apiError = answer(for: error, request)
            if apiError.status.code >= 500 {
                logger.error("request failed", metadata: [
                    "method": "\(request.method)", "path": "\(request.uri.path)", "code": "\(apiError.code.name)",
                    "error": "\(apiError.cause ?? apiError.detail)",
                ])
            }
            response = try apiError.response(from: request, context: context)
        }
        SecurityHeaders.apply(to: &response.headers)
        return response
    }

    private func answer(for error: any Error, _ request: Request) -> APIError {
        // Hummingbird's NotFoundResponder: no route matched the path and method.
        if let http = error as? HTTPError, http.status == .notFound {
            let allowed = routes.methods(at: request.uri.path)
            guard !allowed.isEmpty else {
                return APIError(.notFound, .notFound, "no such resource: \(request.method) \(request.uri.path)")
            }
            let allow = allowed.map(\.rawValue).joined(separator: ", ")
            var headers = HTTPFields()
            headers[.allow] = allow
            return APIError(.methodNotAllowed, .methodNotAllowed, "\(request.uri.path) takes \(allow), not \(request.method)",
                            headers: headers)
        }
        return APIError.from(error)
    }

    /// Every query parameter's name and (percent-decoded) value.
    static func checkQuery(_ request: Request) throws(APIError) {
        for (name, value) in request.uri.queryParameters {
            try InputText.check(name, field: "a query parameter name")
            try InputText.check(value, field: "query parameter '\(name)'")
        }
    }
}

/// A request body whose read errors (other than cancellation and our own answers) mean the client
/// sent a broken body: it is answered 400 MALFORMED_REQUEST.
struct MalformedBodyAsBadRequest: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let base: RequestBody

    struct AsyncIterator: AsyncIteratorProtocol {
        var base: RequestBody.AsyncIterator

        mutating func next() async throws -> ByteBuffer? {
            do {
                return try await base.next()
            } catch let error as CancellationError {
                throw error
            } catch let error as any HTTPResponseError {
                throw error
            } catch {
                throw APIError(.badRequest, .malformedRequest,
                               "the request body ended early or is malformed (is it shorter than its Content-Length?)",
                               cause: "\(error)")
            }
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(base: base.makeAsyncIterator()) }
}
