import Crypto
import Foundation
import HTTPTypes
import Hummingbird

/// The browser session: an `HttpOnly; SameSite=Strict` cookie holding the credential (an access
/// token, or the operator's admin token), plus a CSRF token the page holds in memory.
///
/// Why a cookie and not a token in JavaScript: script (ours, or anything injected) can never read
/// an HttpOnly cookie, so an XSS cannot carry the credential away; and `EventSource` and `<img>`
/// cannot send an Authorization header, so server push and thumbnails need a cookie anyway.
/// The cost of cookies is CSRF, answered twice: `SameSite=Strict` (other sites' requests carry
/// no cookie) and a synchronizer token: every state-changing request (not GET/HEAD/OPTIONS)
/// authenticated by the cookie must carry `X-CSRF-Token`, HMAC-SHA256(secret, "csrf|" + cookie),
/// which the page learns from `GET /auth/session` (a cross-origin page cannot read that answer).
public struct SessionCookie: Sendable {
    public static let name = "ff_session"
    public static let csrfHeader = HTTPField.Name("X-CSRF-Token")!
    let key: SymmetricKey
    /// `Secure` is added when the public base URL is https (a plain-http development setup could not keep it).
    let secure: Bool

    public init(secret: String, secure: Bool) {
        key = SymmetricKey(data: SHA256.hash(data: Array("frameflow-csrf|\(secret)".utf8)))
        self.secure = secure
    }

    /// The CSRF token that goes with a session value.
    public func csrfToken(for session: String) -> String {
        HMAC<SHA256>.authenticationCode(for: Array("csrf|\(session)".utf8), using: key)
            .map { String(format: "%02x", $0) }.joined()
    }

    /// Whether `presented` is the CSRF token of `session`, compared in constant time.
    public func isValidCSRF(_ presented: String, for session: String) -> Bool {
        let expected = Array(csrfToken(for: session).utf8), given = Array(presented.utf8)
        guard expected.count == given.count else { return false }
        var diff: UInt8 = 0
        for i in 0..<expected.count { diff |= expected[i] ^ given[i] }
        return diff == 0
    }

    /// The session cookie's value in `request`, if any.
    public static func value(in request: Request) -> String? {
        for header in request.headers[values: .cookie] {
            for pair in header.split(separator: ";") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                guard parts.count == 2, parts[0].trimmingCharacters(in: .whitespaces) == name else { continue }
                let value = parts[1].trimmingCharacters(in: .whitespaces)
                if !value.isEmpty { return value }
            }
        }
        return nil
    }

    /// `Set-Cookie` for a new session living `maxAge` seconds (0 clears it).
    public func setCookie(_ value: String, maxAge: Int) -> String {
        "\(Self.name)=\(value); Path=/; Max-Age=\(maxAge); HttpOnly; SameSite=Strict" + (secure ? "; Secure" : "")
    }
}

/// Lets a cookie session stand in for `Authorization: Bearer`: when a request has no
/// Authorization header but a session cookie, and is safe (GET/HEAD/OPTIONS) or carries the
/// session's CSRF token, the cookie's credential is passed on as the bearer token, so
/// ``JWTAuthMiddleware`` and ``AdminTokenMiddleware`` decide exactly as for API clients.
/// A state-changing request with a cookie but without a valid CSRF token is passed on without
/// a credential, so it is refused like an anonymous one (login and registration still work).
public struct SessionCookieMiddleware<Context: RequestContext>: RouterMiddleware {
    let cookie: SessionCookie

    public init(cookie: SessionCookie) {
        self.cookie = cookie
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.headers[.authorization] == nil, let session = SessionCookie.value(in: request) else {
            return try await next(request, context)
        }
        let safe = [.get, .head, .options].contains(request.method)
        if !safe {
            guard let presented = request.headers[SessionCookie.csrfHeader], cookie.isValidCSRF(presented, for: session) else {
                return try await next(request, context)
            }
        }
        var head = request.head
        head.headerFields[.authorization] = "Bearer \(session)"
        return try await next(Request(head: head, body: request.body), context)
    }
}
