import Hummingbird
import Logging

/// Turns errors that are not HTTP answers yet (a ``FrameFlowError`` from a
/// seam, a `StoreError` when the database is down, ...) into problem
/// documents whose status follows their code, e.g. 503 DATABASE_UNAVAILABLE
/// instead of Hummingbird's bare 500.
///
/// The mapped error keeps its cause; ``RequestGuardMiddleware`` logs 5xx
/// answers with it (once, for every route), because the client only sees the code.
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
            throw APIError.from(error)
        }
    }
}
