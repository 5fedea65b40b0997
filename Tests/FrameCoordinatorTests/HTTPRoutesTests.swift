import FrameAPI
import FrameCore
import FrameStore
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Testing
@testable import FrameCoordinator

/// The coordinator's router with the user-facing API mounted: operator routes
/// keep working and the API's routes are reachable on the same router.
@Suite struct HTTPRoutesTests {
    @Test func apiIsMountedNextToOperatorRoutes() async throws {
        var logger = Logger(label: "test")
        logger.logLevel = .error
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("ff-routes-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        // Never queried by the requests below (they fail validation or authentication first).
        let database = Database(url: "postgresql://nobody@127.0.0.1:1/none", logger: logger)
        let api = await FrameAPIServer(
            configuration: APIConfiguration(
                uploadsDirectory: root.appendingPathComponent("uploads"), resultsDirectory: root.appendingPathComponent("results"),
                jwtSecret: "a-secret-that-is-long-enough-for-hs256"),
            database: database, ingestor: UnusedIngestor(), canceller: UnusedCanceller(), logger: logger)
        let registry = NodeRegistry(directory: InMemoryNodeDirectory(), logger: logger)
        let router = CoordinatorRoutes.build(registry: registry, adminToken: "admin", api: api, ready: { true })
        let app = Application(router: router, logger: logger)
        try await app.test(.router) { client in
            #expect(try await client.execute(uri: "/health", method: .get).status == .ok)
            let nodes = try await client.execute(uri: "/admin/nodes", method: .get, headers: [.authorization: "Bearer admin"])
            #expect(nodes.status == .ok)
            let wrong = try await client.execute(uri: "/admin/nodes", method: .get, headers: [.authorization: "Bearer nope"])
            #expect(wrong.status == .forbidden)
            let login = try await client.execute(uri: "/auth/login", method: .post, body: ByteBuffer(string: "{}"))
            #expect(login.status == .unprocessableContent)
            let videos = try await client.execute(uri: "/videos", method: .get)
            #expect(videos.status == .unauthorized)
        }
        await database.shutdown()
    }

    /// A typo in `frameflow nodes revoke` is a 404, not a new revoked node; `?create=true` still
    /// refuses a certificate before its node ever connects.
    @Test func revokingAnUnknownNodeIs404() async throws {
        var logger = Logger(label: "test")
        logger.logLevel = .error
        let registry = NodeRegistry(directory: InMemoryNodeDirectory(), logger: logger)
        let router = CoordinatorRoutes.build(registry: registry, adminToken: "admin-token-0123456789", ready: { true })
        let app = Application(router: router, logger: logger)
        let admin: HTTPFields = [.authorization: "Bearer admin-token-0123456789"]
        try await app.test(.router) { client in
            let typo = try await client.execute(uri: "/admin/nodes/node-33/revoke", method: .post, headers: admin)
            #expect(typo.status == .notFound)
            #expect(typo.headers[.contentType] == "application/problem+json")
            #expect(try await registry.statuses().isEmpty, "nothing was created")
            let pre = try await client.execute(uri: "/admin/nodes/node-new/revoke?create=true", method: .post, headers: admin)
            #expect(pre.status == .ok)
            #expect(try await registry.statuses().map(\.name) == ["node-new"])
            let again = try await client.execute(uri: "/admin/nodes/node-new/revoke", method: .post, headers: admin)
            #expect(again.status == .ok, "a known (revoked) node can be revoked again")
            // The operator routes are wrapped like the API's: problem documents and security headers.
            let unknown = try await client.execute(uri: "/admin/nothing", method: .get, headers: admin)
            #expect(unknown.status == .notFound)
            #expect(unknown.headers[.contentType] == "application/problem+json")
            let health = try await client.execute(uri: "/health", method: .get)
            #expect(health.headers.contains { $0.name.canonicalName == "x-frame-options" && $0.value == "DENY" })
            #expect(try await client.execute(uri: "/health", method: .post).status == .methodNotAllowed)
        }
    }
}
