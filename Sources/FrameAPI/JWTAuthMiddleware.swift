import FrameStore
import Hummingbird

/// Requires `Authorization: Bearer <access token>` and puts the caller into
/// ``APIRequestContext/identity``.
///
/// Missing, malformed, forged or expired tokens and tokens of deleted
/// accounts all get the same 401: telling them apart would only help an attacker.
public struct JWTAuthMiddleware: RouterMiddleware {
    public typealias Context = APIRequestContext
    let tokens: TokenService
    let users: UserStore

    public init(tokens: TokenService, users: UserStore) {
        self.tokens = tokens
        self.users = users
    }

    public func handle(
        _ request: Request, context: APIRequestContext,
        next: (Request, APIRequestContext) async throws -> Response
    ) async throws -> Response {
        var context = context
        context.identity = try await authenticate(request)
        return try await next(request, context)
    }

    func authenticate(_ request: Request) async throws -> AuthenticatedUser {
        guard let token = Self.bearerToken(request) else {
            throw APIError.unauthorized("this endpoint needs 'Authorization: Bearer <access token>'")
        }
        guard let userID = await tokens.verify(token) else {
            throw APIError.unauthorized("the access token is invalid or expired")
        }
        guard let user = try await users.find(id: userID) else {
            throw APIError.unauthorized("the access token is invalid or expired")
        }
        return AuthenticatedUser(id: user.id, email: user.email, role: user.role)
    }

    static func bearerToken(_ request: Request) -> String? {
        guard let header = request.headers[.authorization] else { return nil }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        let token = parts[1].trimmingCharacters(in: .whitespaces)
        return token.isEmpty ? nil : token
    }
}
