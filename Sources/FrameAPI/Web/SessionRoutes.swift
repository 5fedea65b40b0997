import Crypto
import FrameStore
import Foundation
import Hummingbird

/// `/auth/session`: the web app's cookie session (see ``SessionCookie`` for why a cookie).
///
/// - `POST` `{email, password}` logs a user in, `{adminToken}` an operator without an account;
///   200 with the session document and `Set-Cookie`. Wrong credentials: 401, as `/auth/login`.
/// - `GET` the session document `{user?, operator, csrfToken, expiresIn}`, or 401.
/// - `DELETE` clears the cookie (the access token inside stays valid until it expires: tokens
///   are stateless; the cookie's Max-Age equals the token's lifetime).
struct SessionRoutes {
    let users: UserStore
    let hasher: PasswordHasher
    let tokens: TokenService
    let cookie: SessionCookie
    let adminToken: String?

    struct LoginRequest: Decodable { var email: String?; var password: String?; var adminToken: String? }
    struct SessionUser: Codable { @LowercaseID var id: UUID; var email: String; var name: String; var role: String }
    struct SessionResponse: ResponseEncodable { var user: SessionUser?; var `operator`: Bool; var csrfToken: String; var expiresIn: Int }

    func register(_ group: RouterGroup<APIRequestContext>) {
        group.post("session") { request, context in try await login(request, context) }
        group.get("session") { request, _ in try await current(request) }
        group.delete("session") { _, _ in
            var response = Response(status: .noContent)
            response.headers[.setCookie] = cookie.setCookie("", maxAge: 0)
            return response
        }
    }

    func login(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let buffer = try await request.body.collect(upTo: 64 * 1024)
        guard let body = try? context.requestDecoder.decode(LoginRequest.self, from: Data(buffer.readableBytesView)) else {
            throw APIError.validation("the body must be JSON with email and password, or adminToken")
        }
        let session: String
        let document: SessionResponse
        if let presented = body.adminToken {
            guard let adminToken, Self.sameSecret(presented, adminToken) else {
                throw APIError.unauthorized("the admin token is not valid")
            }
            session = presented
            document = SessionResponse(user: nil, operator: true, csrfToken: cookie.csrfToken(for: session), expiresIn: tokens.lifetimeSeconds)
        } else {
            guard let email = body.email, let password = body.password else {
                throw APIError.validation("the body must be JSON with email and password, or adminToken")
            }
            let user = try await users.find(email: email)
            // Verify against a decoy for unknown addresses so both failures cost the same time.
            let ok = try await hasher.verify(password, hash: user?.passwordHash ?? hasher.decoyHash)
            guard let user, ok else { throw APIError.unauthorized("e-mail or password is wrong") }
            session = try await tokens.issue(userID: user.id)
            document = Self.document(user, csrf: cookie.csrfToken(for: session), expiresIn: tokens.lifetimeSeconds)
        }
        var response = try document.response(from: request, context: context)
        response.headers[.setCookie] = cookie.setCookie(session, maxAge: tokens.lifetimeSeconds)
        response.headers[.cacheControl] = "no-store"
        return response
    }

    func current(_ request: Request) async throws -> SessionResponse {
        guard let session = SessionCookie.value(in: request) else { throw APIError.unauthorized("not logged in") }
        let csrf = cookie.csrfToken(for: session)
        if let adminToken, Self.sameSecret(session, adminToken) {
            return SessionResponse(user: nil, operator: true, csrfToken: csrf, expiresIn: tokens.lifetimeSeconds)
        }
        guard let id = await tokens.verify(session), let user = try await users.find(id: id) else {
            throw APIError.unauthorized("the session has expired; log in again")
        }
        return Self.document(user, csrf: csrf, expiresIn: tokens.lifetimeSeconds)
    }

    static func document(_ user: UserRecord, csrf: String, expiresIn: Int) -> SessionResponse {
        SessionResponse(
            user: SessionUser(id: user.id, email: user.email, name: user.name, role: user.role.rawValue),
            operator: user.role == .admin, csrfToken: csrf, expiresIn: expiresIn)
    }

    /// Compares digests so the time taken does not depend on how much of the secret matched.
    static func sameSecret(_ a: String, _ b: String) -> Bool {
        SHA256.hash(data: Array(a.utf8)) == SHA256.hash(data: Array(b.utf8))
    }
}
