import FrameCore
import FrameStore
import Foundation
import Hummingbird

/// `/auth`: registration, login and the caller's own account.
///
/// Registration, login and refresh are throttled by ``LoginGuard`` (per client
/// address, and per account for logins) before any bcrypt or token work, and both do
/// exactly one bcrypt computation whatever the outcome, so neither answers
/// faster for an e-mail address that has (or has not) an account.
struct AuthRoutes {
    let users: UserStore
    let hasher: PasswordHasher
    let tokens: TokenService
    let refresh: RefreshTokens
    let logins: LoginGuard

    struct RegisterRequest: Decodable { var email: String; var password: String; var name: String? }
    struct RegisterResponse: ResponseEncodable { @LowercaseID var id: UUID; var email: String }
    struct LoginRequest: Decodable { var email: String; var password: String }
    struct LoginResponse: ResponseEncodable {
        var accessToken: String
        var tokenType: String
        var expiresIn: Int
        /// Exchanged at `POST /auth/refresh` for a new pair; single use (each use rotates it).
        var refreshToken: String
        var refreshExpiresIn: Int
    }
    /// `{refreshToken}`; `refresh_token` is accepted too (the other implementations' spelling).
    struct RefreshRequest: Decodable {
        var refreshToken: String
        enum CodingKeys: String, CodingKey { case refreshToken, refresh_token }
        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            guard let token = try c.decodeIfPresent(String.self, forKey: .refreshToken)
                ?? c.decodeIfPresent(String.self, forKey: .refresh_token)
            else { throw DecodingError.keyNotFound(CodingKeys.refreshToken, .init(codingPath: [], debugDescription: "missing")) }
            refreshToken = token
        }
    }
    struct MeResponse: ResponseEncodable { @LowercaseID var id: UUID; var email: String; var name: String; var role: String; var createdAt: Date }

    func register(public router: RouterGroup<APIRequestContext>, authenticated: RouterGroup<APIRequestContext>) {
        router.post("register") { request, context in try await register(request, context) }
        router.post("login") { request, context in try await login(request, context) }
        router.post("refresh") { request, context in try await refresh(request, context) }
        router.post("logout") { request, context in try await logout(request, context) }
        authenticated.get("me") { _, context in try await me(context) }
    }

    func register(_ request: Request, _ context: APIRequestContext) async throws -> EditedResponse<RegisterResponse> {
        try logins.attempt(account: nil, address: context.clientAddress)
        let body = try await decode(RegisterRequest.self, request, context)
        let email = UserStore.normalize(email: body.email)
        guard Self.isPlausibleEmail(email) else { throw APIError.validation("email is not a valid e-mail address") }
        if let problem = Self.passwordProblem(body.password) { throw APIError.validation(problem) }
        let name = (body.name ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        guard name.count <= 200 else { throw APIError.validation("name must be at most 200 characters") }
        // Hashed before the address is looked at, taken or not: answering a taken address without the
        // bcrypt round would tell anyone which addresses have accounts. The unique constraint decides.
        let hash = try await hasher.hash(body.password)
        do {
            let user = try await users.create(email: email, passwordHash: hash, name: name)
            return EditedResponse(status: .created, response: RegisterResponse(id: user.id, email: user.email))
        } catch StoreError.uniqueViolation {
            throw Self.emailTaken
        }
    }

    func login(_ request: Request, _ context: APIRequestContext) async throws -> LoginResponse {
        let body = try await decode(LoginRequest.self, request, context)
        let account = UserStore.normalize(email: body.email)
        // No account can have a longer address (register refuses them); refused before it becomes a
        // throttle key, so keys stay small however many are tried.
        guard account.utf8.count <= Self.maxEmailBytes else { throw APIError.validation("email is not a valid e-mail address") }
        try logins.attempt(account: account, address: context.clientAddress)
        let user = try await users.find(email: account)
        // Verify against a decoy for unknown addresses so both failures cost the same time.
        let ok = try await hasher.verify(body.password, hash: user?.passwordHash ?? hasher.decoyHash)
        guard let user, ok else { throw APIError.unauthorized("e-mail or password is wrong") }
        logins.succeeded(account: account)
        return try await pair(for: user.id, refreshToken: try await refresh.issue(userID: user.id))
    }

    /// A valid refresh token for a new access token and the next refresh token; 401 otherwise
    /// (unknown, expired, revoked, or reused after rotation, which also revokes its family).
    /// Throttled per client address like login (no account: the token names none until it is
    /// looked up), so refresh tokens cannot be guessed at speed.
    func refresh(_ request: Request, _ context: APIRequestContext) async throws -> LoginResponse {
        try logins.attempt(account: nil, address: context.clientAddress)
        let body = try await decode(RefreshRequest.self, request, context)
        guard let rotated = try await refresh.rotate(body.refreshToken),
              try await users.find(id: rotated.userID) != nil
        else {
            throw APIError.unauthorized("the refresh token is invalid, expired or revoked: log in again")
        }
        return try await pair(for: rotated.userID, refreshToken: rotated.next)
    }

    /// Revokes the refresh token (and every token rotated from the same login). Always 204, so the
    /// answer tells nothing about the token.
    func logout(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let body = try await decode(RefreshRequest.self, request, context)
        try await refresh.revoke(body.refreshToken)
        return Response(status: .noContent)
    }

    func pair(for userID: UUID, refreshToken: String) async throws -> LoginResponse {
        LoginResponse(accessToken: try await tokens.issue(userID: userID), tokenType: "Bearer", expiresIn: tokens.lifetimeSeconds,
                      refreshToken: refreshToken, refreshExpiresIn: refresh.lifetimeSeconds)
    }

    func me(_ context: APIRequestContext) async throws -> MeResponse {
        let identity = try context.requireIdentity()
        guard let user = try await users.find(id: identity.id) else { throw APIError.unauthorized() }
        return MeResponse(id: user.id, email: user.email, name: user.name, role: user.role.rawValue, createdAt: user.createdAt)
    }

    static let emailTaken = APIError(.conflict, .conflict, "an account with this e-mail address already exists")

    /// Decodes a small JSON body, answering 422 (not 400/500) for missing fields or bad JSON, and for
    /// control characters in any string (``ValidatingJSONDecoder``).
    func decode<T: Decodable>(_ type: T.Type, _ request: Request, _ context: APIRequestContext) async throws -> T {
        let data = try await ValidatingJSONDecoder.collect(request)
        do {
            return try context.requestDecoder.decode(T.self, from: data)
        } catch let error as APIError {
            throw error
        } catch {
            throw APIError.validation("the body must be JSON with the fields \(Self.fields(of: T.self))")
        }
    }

    static func fields(of type: Any.Type) -> String {
        if type == RefreshRequest.self { return "refreshToken" }
        return type == RegisterRequest.self ? "email, password and optionally name" : "email and password"
    }

    /// At least 8 characters with an upper-case letter, a digit and a symbol; nil when the password is acceptable.
    static func passwordProblem(_ password: String) -> String? {
        var missing: [String] = []
        if password.count < 8 { missing.append("at least 8 characters") }
        if !password.contains(where: { $0.isUppercase }) { missing.append("an upper-case letter") }
        if !password.contains(where: { $0.isNumber }) { missing.append("a digit") }
        if !password.contains(where: { !$0.isLetter && !$0.isNumber && !$0.isWhitespace }) { missing.append("a symbol") }
        if password.utf8.count > PasswordHasher.maxPasswordBytes {
            return "password must be at most \(PasswordHasher.maxPasswordBytes) bytes (bcrypt ignores the rest)"
        }
        return missing.isEmpty ? nil : "password is too weak: it needs " + missing.joined(separator: ", ")
    }

    /// The longest address SMTP allows (RFC 5321's path limit less its angle brackets).
    static let maxEmailBytes = 254

    /// A deliberately loose check (one @, a dotted domain, no spaces): the real test is whether mail arrives.
    static func isPlausibleEmail(_ email: String) -> Bool {
        guard email.utf8.count <= maxEmailBytes, !email.contains(where: { $0.isWhitespace }) else { return false }
        let parts = email.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, parts[0].count <= 64 else { return false }
        let labels = parts[1].split(separator: ".", omittingEmptySubsequences: false)
        return labels.count >= 2 && labels.allSatisfy { !$0.isEmpty }
    }
}
