import Crypto
import FrameCore
import Hummingbird

/// Guards operator endpoints with the bearer token from `cluster.yaml`
/// (`coordinator.admin_token`).
///
/// No token configured means operator endpoints are closed (403), never open:
/// auth off by default is how job queues end up exposed.
struct AdminTokenMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: String?

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let token else {
            throw APIError.forbidden("operator endpoints are disabled: set coordinator.admin_token")
        }
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer ") else {
            throw APIError.unauthorized("operator endpoints need 'Authorization: Bearer <admin token>'")
        }
        let presented = Array(header.dropFirst("Bearer ".count).utf8)
        // Compare digests so the comparison time does not depend on how much of the token matched.
        guard SHA256.hash(data: presented) == SHA256.hash(data: Array(token.utf8)) else {
            throw APIError.forbidden("the admin token is not valid")
        }
        return try await next(request, context)
    }
}
