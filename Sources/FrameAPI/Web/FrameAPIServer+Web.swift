import Foundation
import Hummingbird

extension FrameAPIServer {
    /// The cookie session and its CSRF rule, keyed by the API's secret.
    public var sessionCookie: SessionCookie {
        SessionCookie(secret: configuration.jwtSecret ?? "", secure: configuration.publicBaseURL?.hasPrefix("https://") ?? false)
    }

    /// Middleware to put on the router before any route: a session cookie counts as the bearer
    /// credential (with its CSRF rule). Routes added before it do not see cookies.
    public func sessionMiddleware() -> SessionCookieMiddleware<APIRequestContext> {
        SessionCookieMiddleware(cookie: sessionCookie)
    }

    /// What the web app needs besides ``addRoutes(to:)``: `/auth/session` (cookie login),
    /// `/videos/{id}/frames...` (thumbnails) and `GET /events` (the caller's own job changes,
    /// server push). `adminToken` lets an operator without an account open a session.
    public func addWebRoutes(to router: Router<APIRequestContext>, adminToken: String?, events: EventStreamResponder) {
        let errors = CodedErrorMiddleware<APIRequestContext>(logger: logger)
        let authenticate = JWTAuthMiddleware(tokens: tokens, users: users)
        SessionRoutes(users: users, hasher: hasher, tokens: tokens, cookie: sessionCookie, adminToken: adminToken)
            .register(router.group("auth").add(middleware: errors))
        FrameRoutes(jobs: jobs, resultsDirectory: configuration.resultsDirectory, threadPool: threadPool)
            .register(router.group("videos").add(middleware: errors).add(middleware: authenticate))
        router.group("events").add(middleware: errors).add(middleware: authenticate).get { request, context in
            // The audience is the caller, never a parameter: nobody can ask for someone else's events.
            try events.respond(.owner(try context.requireIdentity().id), request: request)
        }
    }
}
