import FrameCore
import Foundation
import Hummingbird

/// The HTTP routes of the coordinator: liveness, readiness and operator node management.
enum CoordinatorRoutes {
    struct Health: ResponseEncodable { var status: String }
    struct NodeList: ResponseEncodable { var items: [NodeStatus] }
    struct NodeActionResult: ResponseEncodable { var name: String; var adminState: String; var online: Bool }

    static func build(
        registry: NodeRegistry, adminToken: String?, ready: @escaping @Sendable () async -> Bool
    ) -> Router<CoordinatorRequestContext> {
        let router = Router(context: CoordinatorRequestContext.self)
        router.get("health") { _, _ in Health(status: "ok") }
        router.get("ready") { _, _ -> Health in
            guard await ready() else {
                throw APIError(.serviceUnavailable, .databaseUnavailable, "the database is not reachable")
            }
            return Health(status: "ready")
        }
        let admin = router.group("admin").add(middleware: AdminTokenMiddleware(token: adminToken))
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
        return router
    }
}

extension NodeStatus: ResponseEncodable {}
