import FrameAPI
import FrameCore
import Foundation
import Hummingbird

/// The HTTP routes of the coordinator: liveness, readiness, Prometheus metrics and operator node management.
enum CoordinatorRoutes {
    struct Health: ResponseEncodable { var status: String }
    struct NodeList: ResponseEncodable { var items: [NodeStatus] }
    struct NodeActionResult: ResponseEncodable { var name: String; var adminState: String; var online: Bool }

    /// The operator routes, plus the user-facing API when `api` is given. Operator endpoints accept
    /// the admin token and, when the API is mounted, access tokens of users whose role is admin.
    static func build(
        registry: NodeRegistry, adminToken: String?, api: FrameAPIServer? = nil, metrics: MetricsEndpoint? = nil,
        ready: @escaping @Sendable () async -> Bool
    ) -> Router<APIRequestContext> {
        let router = Router(context: APIRequestContext.self)
        // First: it must wrap every route (and the 404) to answer preflights and decorate answers.
        if let api { router.add(middleware: api.cors) }
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
            admin.post("nodes/:name/\(action)") { _, context -> NodeActionResult in
                let name = try context.parameters.require("name")
                switch action {
                case "drain":
                    guard try await registry.drain(name) else { throw APIError.notFound("no node named '\(name)'") }
                case "revoke":
                    try await registry.revoke(name)
                default:
                    guard try await registry.enable(name) else { throw APIError.notFound("no node named '\(name)'") }
                }
                let status = try await registry.statuses().first { $0.name == name }
                return NodeActionResult(
                    name: name, adminState: status?.adminState.rawValue ?? action, online: status?.online ?? false)
            }
        }
        api?.addRoutes(to: router)
        return router
    }
}

extension NodeStatus: ResponseEncodable {}
