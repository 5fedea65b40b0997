import Crypto
import FrameCore
import Hummingbird

/// Guards operator endpoints with the bearer token from `cluster.yaml`
/// (`coordinator.admin_token`) or, when an admin-user check is given, an
/// access token of a user whose role is `admin`.
///
/// No token configured and no admin check means operator endpoints are
/// closed (403), never open: auth off by default is how job queues end up exposed.
public struct AdminTokenMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: String?
    let isAdminUserToken: (@Sendable (String) async -> Bool)?

    public init(token: String?, isAdminUserToken: (@Sendable (String) async -> Bool)? = nil) {
        self.token = token
        self.isAdminUserToken = isAdminUserToken
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard token != nil || isAdminUserToken != nil else {
            throw APIError.forbidden("operator endpoints are disabled: set coordinator.admin_token")
        }
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer ") else {
            throw APIError.unauthorized("operator endpoints need 'Authorization: Bearer <admin token>'")
        }
        let presented = String(header.dropFirst("Bearer ".count))
        // Compare digests so the comparison time does not depend on how much of the token matched.
        if let token, SHA256.hash(data: Array(presented.utf8)) == SHA256.hash(data: Array(token.utf8)) {
            return try await next(request, context)
        }
        if let isAdminUserToken, await isAdminUserToken(presented) {
            return try await next(request, context)
        }
        throw APIError.forbidden("the admin token is not valid")
    }
}
