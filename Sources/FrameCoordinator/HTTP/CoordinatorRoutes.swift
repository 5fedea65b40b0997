import FrameAPI
import FrameCore
import Foundation
import Hummingbird
import Logging

/// The HTTP routes of the coordinator: liveness, readiness, Prometheus metrics and operator node management.
enum CoordinatorRoutes {
    struct Health: ResponseEncodable { var status: String }
    struct NodeList: ResponseEncodable { var items: [NodeStatus] }
    struct NodeActionResult: ResponseEncodable { var name: String; var adminState: String; var online: Bool }

    /// The operator routes, plus the user-facing API when `api` is given. Operator endpoints accept
    /// the admin token and, when the API is mounted, access tokens of users whose role is admin.
    static func build(
        registry: NodeRegistry, adminToken: String?, api: FrameAPIServer? = nil, metrics: MetricsEndpoint? = nil,
        logger: Logger = Logger(label: "frameflow.http"), web: WebRoutes? = nil,
        ready: @escaping @Sendable () async -> Bool
    ) -> Router<APIRequestContext> {
        let router = Router(context: APIRequestContext.self)
        // First, so it wraps every route below (and unknown ones): problem documents, security headers.
        let routes = FrameAPIServer.addRequestGuard(to: router, logger: logger)
        defer { routes.load(router.routes) }
        // Then CORS, so preflights and answers to every route (and the 404) are decorated.
        if let api { router.add(middleware: api.cors) }
        // Then the session cookie: only routes added after a middleware go through it.
        if let api, web != nil { router.add(middleware: api.sessionMiddleware()) }
        router.get("health") { _, _ in Health(status: "ok") }
        router.get("ready") { _, _ -> Health in
            guard await ready() else {
                throw APIError(.serviceUnavailable, .databaseUnavailable, "the database is not reachable")
            }
            return Health(status: "ready")
        }
        if let metrics {
            // Unauthenticated like /health: scrapers rarely carry tokens; it shows counts, no user data.
            router.get("metrics") { _, _ in await metrics.response() }
        }
        let adminAuth = api?.adminMiddleware(adminToken: adminToken) ?? AdminTokenMiddleware(token: adminToken)
        let admin = router.group("admin").add(middleware: adminAuth)
        admin.get("nodes") { _, _ in NodeList(items: try await registry.statuses()) }
        for action in ["drain", "revoke", "enable"] {
            admin.post("nodes/:name/\(action)") { request, context -> NodeActionResult in
                let name = try context.parameters.require("name")
                switch action {
                case "drain":
                    guard try await registry.drain(name) else { throw APIError.notFound("no node named '\(name)'") }
                case "revoke":
                    // An unknown name is most likely a typo: 404, unless the operator asks to refuse a
                    // certificate before its node has ever connected (`?create=true`).
                    let create = request.uri.queryParameters["create"] == "true"
                    guard try await registry.revoke(name, createIfUnknown: create) || create else {
                        throw APIError.notFound("no node named '\(name)' (add ?create=true to revoke a name not seen yet)")
                    }
                default:
                    guard try await registry.enable(name) else { throw APIError.notFound("no node named '\(name)'") }
                }
                let status = try await registry.statuses().first { $0.name == name }
                return NodeActionResult(
                    name: name, adminState: status?.adminState.rawValue ?? action, online: status?.online ?? false)
            }
        }
        api?.addRoutes(to: router)
        if let web { web.add(to: router, admin: admin, api: api, adminToken: adminToken) }
        return router
    }
}

extension NodeStatus: ResponseEncodable {}
