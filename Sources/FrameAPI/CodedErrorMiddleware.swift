import Hummingbird
import Logging

/// Turns errors that are not HTTP answers yet (a ``FrameFlowError`` from a
/// seam, a `StoreError` when the database is down, ...) into problem
/// documents whose status follows their code, e.g. 503 DATABASE_UNAVAILABLE
/// instead of Hummingbird's bare 500.
///
/// Unexpected errors are logged here with the request path, because the
/// client only sees the code.
public struct CodedErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    let logger: Logger

    public init(logger: Logger) {
        self.logger = logger
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as any HTTPResponseError {
            throw error
        } catch {
            let mapped = APIError.from(error)
            if mapped.status.code >= 500 {
                logger.error("request failed", metadata: [
                    "path": "\(request.uri.path)", "code": "\(mapped.code.name)", "error": "\(error)",
                ])
            }
            throw mapped
        }
    }
}
