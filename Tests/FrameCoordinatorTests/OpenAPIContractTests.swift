import FrameAPI
import FrameCore
import FrameStore
import FrameWeb
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Testing
@testable import FrameCoordinator

/// `openapi.yaml` and the coordinator's router cannot drift: every route the router registers is
/// described with the same method, and every operation described is registered. The contract is
/// served as YAML and as JSON, and both say the same thing.
@Suite struct OpenAPIContractTests {
    /// The coordinator's router exactly as `CoordinatorService` builds it (API, metrics, web app, contract).
    static func withRouter(_ body: (Router<APIRequestContext>, APIContract) async throws -> Void) async throws {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("ff-contract-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        // Never queried: the routes are only listed, and the requests below need no database.
        let database = Database(url: "postgresql://nobody@127.0.0.1:1/none", logger: logger)
        let api = await FrameAPIServer(
            configuration: APIConfiguration(
                uploadsDirectory: root.appendingPathComponent("uploads"), resultsDirectory: root.appendingPathComponent("results"),
                jwtSecret: "a-secret-that-is-long-enough-for-hs256"),
            database: database, ingestor: UnusedIngestor(), canceller: UnusedCanceller(), logger: logger)
        let registry = NodeRegistry(directory: InMemoryNodeDirectory(), logger: logger)
        let hub = EventHub()
        let contract = try #require(try APIContract.bundled(), "the contract is bundled with FrameWeb")
        let router = CoordinatorRoutes.build(
            registry: registry, adminToken: "admin", api: api,
            metrics: MetricsEndpoint(metrics: CoordinatorMetrics(), nodes: registry, logger: logger, jobCounts: nil, events: hub),
            logger: logger,
            web: WebRoutes(events: EventStreamResponder(hub: hub), monitor: nil, assets: .bundled(), contract: contract),
            ready: { true })
        try await body(router, contract)
        await database.shutdown()
    }

    /// A route's path as OpenAPI writes it: captures are already `{name}`; the one recursive
    /// wildcard (`/web/**`, the web app's files) is the `{path}` parameter.
    static func specPath(_ path: RouterPath) -> String {
        let text = path.description
        return text.hasSuffix("/**") ? String(text.dropLast(3)) + "/{path}" : text
    }

    @Test func everyRegisteredRouteIsInTheContractAndEveryOperationIsRegistered() async throws {
        try await Self.withRouter { router, contract in
            let registered = Set(router.routes.map { APIContract.Operation(method: $0.method.rawValue, path: Self.specPath($0.path)) })
            let undocumented = registered.subtracting(contract.operations).map(\.description).sorted()
            let unserved = contract.operations.subtracting(registered).map(\.description).sorted()
            #expect(undocumented.isEmpty, "routes missing from openapi.yaml: \(undocumented)")
            #expect(unserved.isEmpty, "operations in openapi.yaml that no route serves: \(unserved)")
            // Sanity: the comparison saw the whole router (API, tus, web, operators), not an empty list.
            #expect(registered.count >= 40)
            #expect(registered.contains(.init(method: "PATCH", path: "/uploads/{id}")))
            #expect(registered.contains(.init(method: "GET", path: "/openapi.json")))
        }
    }

    @Test func theContractIsServedAsYAMLAndAsTheSameJSON() async throws {
        try await Self.withRouter { router, contract in
            let app = Application(router: router, logger: Logger(label: "test"))
            try await app.test(.router) { client in
                let yaml = try await client.execute(uri: "/openapi.yaml", method: .get)
                #expect(yaml.status == .ok)
                #expect(yaml.headers[.contentType] == "application/yaml")
                let repositoryCopy = try String(contentsOf: Self.repositoryRoot.appendingPathComponent("openapi.yaml"), encoding: .utf8)
                #expect(String(buffer: yaml.body) == repositoryCopy, "the served contract is the repository's openapi.yaml")
                let etag = try #require(yaml.headers[.eTag])
                #expect(try await client.execute(uri: "/openapi.yaml", method: .get, headers: [.ifNoneMatch: etag]).status == .notModified)

                let json = try await client.execute(uri: "/openapi.json", method: .get)
                #expect(json.status == .ok)
                #expect(json.headers[.contentType] == "application/json")
                let document = try #require(try JSONSerialization.jsonObject(with: Data(buffer: json.body)) as? [String: Any])
                #expect(document["openapi"] as? String == "3.1.0")
                let paths = try #require(document["paths"] as? [String: [String: Any]])
                let operations = Set(paths.flatMap { path, item in
                    item.keys.filter { ["get", "post", "put", "patch", "delete", "head", "options"].contains($0) }
                        .map { APIContract.Operation(method: $0.uppercased(), path: path) }
                })
                #expect(operations == contract.operations)
                // Quoted status codes stay strings, numbers stay numbers, anchors are resolved.
                let alias = try #require(paths["/videos/upload"]?["post"] as? [String: Any])
                let responses = try #require(alias["responses"] as? [String: Any])
                #expect(responses["201"] != nil && responses["413"] != nil)
                let list = try #require(paths["/videos"]?["get"] as? [String: Any])
                let parameters = try #require(list["parameters"] as? [[String: Any]])
                let size = try #require(parameters.first { $0["name"] as? String == "size" }?["schema"] as? [String: Any])
                #expect(size["maximum"] as? Int == 100)
                // Every problem document has the stable code.
                let schemas = try #require((document["components"] as? [String: Any])?["schemas"] as? [String: Any])
                let problem = try #require(schemas["Problem"] as? [String: Any])
                #expect((problem["required"] as? [String])?.contains("code") == true)
            }
        }
    }

    @Test func yamlScalarsBecomeTheirJSONTypes() throws {
        let contract = try APIContract(yaml: """
            openapi: 3.1.0
            paths:
              /a: { get: { responses: { '200': { description: "x \\"q\\"" } } } }
            x-types: [1, 2.5, true, null, 'text', 2026-12-01, "a\\tb"]
            x-anchor: &here { k: v }
            x-alias: *here
            """)
        #expect(contract.operations == [.init(method: "GET", path: "/a")])
        #expect(String(buffer: contract.json.bytes) == """
            {"openapi":"3.1.0","paths":{"/a":{"get":{"responses":{"200":{"description":"x \\"q\\""}}}}},\
            "x-types":[1,2.5,true,null,"text","2026-12-01","a\\tb"],"x-anchor":{"k":"v"},"x-alias":{"k":"v"}}

            """)
        #expect(throws: APIContract.Invalid.self) { try APIContract(yaml: "openapi: 3.0.0\npaths: {}\n") }
    }

    static var repositoryRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }
}
