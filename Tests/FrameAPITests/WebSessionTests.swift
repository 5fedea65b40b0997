import FrameAPI
import FrameStore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

/// The web app's cookie session (CSRF rule) and its event stream's audience, over HTTP.
@Suite("Web session and events")
struct WebSessionTests {
    static let adminToken = "web-admin-token"

    /// A router laid out as the coordinator's: session middleware first, then the API and web routes.
    static func run(_ body: @escaping @Sendable (FrameAPIServer, EventHub, any TestClientProtocol) async throws -> Void) async throws {
        try await TestDatabase.withFresh { db in
            let root = FileManager.default.temporaryDirectory.appendingPathComponent("ff-web-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: root) }
            let jobs = JobStore(database: db)
            let config = APIConfiguration(
                uploadsDirectory: root.appendingPathComponent("uploads"), resultsDirectory: root.appendingPathComponent("results"),
                jwtSecret: Harness.secret, bcryptCost: 4)
            let api = await FrameAPIServer(
                configuration: config, database: db, ingestor: PlanningIngestor(jobs: jobs), canceller: StoreCanceller(jobs: jobs),
                logger: TestDatabase.logger)
            let hub = EventHub()
            let router = Router(context: APIRequestContext.self)
            router.add(middleware: api.sessionMiddleware())
            router.group("admin").add(middleware: api.adminMiddleware(adminToken: adminToken)).get("ping") { _, _ in "pong" }
            api.addRoutes(to: router)
            api.addWebRoutes(to: router, adminToken: adminToken, events: EventStreamResponder(hub: hub, heartbeat: .seconds(60)))
            let app = Application(router: router, server: FrameAPIServer.httpServer, logger: TestDatabase.logger)
            try await app.test(.router) { client in try await body(api, hub, client) }
        }
    }

    struct Session: Decodable { var csrfToken: String; var `operator`: Bool; var user: User?; struct User: Decodable { var id: UUID; var email: String } }

    static func login(_ client: some TestClientProtocol, _ body: [String: String]) async throws -> (cookie: String, session: Session, setCookie: String) {
        let response = try await client.execute(
            uri: "/auth/session", method: .post, headers: [.contentType: "application/json"], body: Harness.body(body))
        #expect(response.status == .ok)
        let setCookie = try #require(response.headers[.setCookie])
        let cookie = String(setCookie.split(separator: ";")[0])
        return (cookie, try response.decode(Session.self), setCookie)
    }

    static func register(_ client: some TestClientProtocol, _ email: String) async throws {
        let response = try await client.execute(
            uri: "/auth/register", method: .post, headers: [.contentType: "application/json"],
            body: Harness.body(["email": email, "password": Harness.password]))
        #expect(response.status == .created)
    }

    @Test func theCookieAuthenticatesReadsButWritesNeedTheCSRFToken() async throws {
        try await Self.run { _, _, client in
            try await Self.register(client, "web@example.com")
            let (cookie, session, setCookie) = try await Self.login(client, ["email": "web@example.com", "password": Harness.password])
            #expect(setCookie.contains("HttpOnly"))
            #expect(setCookie.contains("SameSite=Strict"))
            #expect(setCookie.contains("Path=/"))
            #expect(session.user?.email == "web@example.com")
            // Ids are lower-case in this body too (RFC 9562), like everywhere else.
            let userID = try #require(session.user?.id)
            let document = try await client.execute(uri: "/auth/session", method: .get, headers: [.cookie: cookie])
            #expect(String(buffer: document.body).contains("\"\(userID.uuidString.lowercased())\""), "\(String(buffer: document.body))")

            // A reload: the cookie alone gives the session back, with the same CSRF token.
            let again = try await client.execute(uri: "/auth/session", method: .get, headers: [.cookie: cookie])
            #expect(again.status == .ok)
            #expect(try again.decode(Session.self).csrfToken == session.csrfToken)
            #expect(try await client.execute(uri: "/videos", method: .get, headers: [.cookie: cookie]).status == .ok)

            // Create a job (bearer-free: cookie + CSRF), then try to cancel it without and with the token.
            var upload: HTTPFields = [.cookie: cookie, .contentType: "multipart/form-data; boundary=XyZ", SessionCookie.csrfHeader: session.csrfToken]
            let body = "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.mp4\"\r\n\r\nbytes\r\n--XyZ--\r\n"
            let created = try await client.execute(uri: "/videos", method: .post, headers: upload, body: ByteBuffer(string: body))
            #expect(created.status == .created)
            struct Video: Decodable { var id: UUID }
            let id = try created.decode(Video.self).id
            upload[SessionCookie.csrfHeader] = nil
            #expect(try await client.execute(uri: "/videos", method: .post, headers: upload, body: ByteBuffer(string: body)).status == .unauthorized)
            let forged: HTTPFields = [.cookie: cookie, SessionCookie.csrfHeader: String(repeating: "0", count: 64)]
            #expect(try await client.execute(uri: "/videos/\(id)", method: .delete, headers: forged).status == .unauthorized)
            let good: HTTPFields = [.cookie: cookie, SessionCookie.csrfHeader: session.csrfToken]
            #expect(try await client.execute(uri: "/videos/\(id)", method: .delete, headers: good).status == .ok)

            // Log out clears the cookie.
            let out = try await client.execute(uri: "/auth/session", method: .delete, headers: good)
            #expect(out.headers[.setCookie]?.contains("Max-Age=0") == true)
            #expect(try await client.execute(uri: "/auth/session", method: .get).status == .unauthorized)
        }
    }

    @Test func wrongCredentialsGetNoCookieAndTheAdminTokenOpensAnOperatorSession() async throws {
        try await Self.run { _, _, client in
            let wrong = try await client.execute(
                uri: "/auth/session", method: .post, headers: [.contentType: "application/json"],
                body: Harness.body(["email": "nobody@example.com", "password": "Wr0ng!pass"]))
            #expect(wrong.status == .unauthorized)
            #expect(wrong.headers[.setCookie] == nil)
            let badToken = try await client.execute(
                uri: "/auth/session", method: .post, headers: [.contentType: "application/json"],
                body: Harness.body(["adminToken": "guess"]))
            #expect(badToken.status == .unauthorized)
            let (cookie, session, _) = try await Self.login(client, ["adminToken": Self.adminToken])
            #expect(session.operator)
            #expect(session.user == nil)
            #expect(try await client.execute(uri: "/admin/ping", method: .get, headers: [.cookie: cookie]).status == .ok)
            #expect(try await client.execute(uri: "/admin/ping", method: .get).status == .unauthorized)
        }
    }

    @Test func theEventStreamCarriesOnlyTheCallersJobs() async throws {
        try await Self.run { _, hub, client in
            try await Self.register(client, "alice@example.com")
            try await Self.register(client, "bob@example.com")
            let alice = try await Self.login(client, ["email": "alice@example.com", "password": Harness.password])
            let bob = try await Self.login(client, ["email": "bob@example.com", "password": Harness.password])
            let aliceID = try #require(alice.session.user?.id), bobID = try #require(bob.session.user?.id)
            // Bob asks for everything since the start, and even names Alice in the query: ignored.
            let text = try await withThrowingTaskGroup(of: String?.self) { group in
                group.addTask {
                    let response = try await client.execute(
                        uri: "/events?lastEventId=\(hub.epoch)-0&owner=\(aliceID)", method: .get,
                        headers: [.cookie: bob.cookie])
                    #expect(response.headers[.contentType]?.hasPrefix("text/event-stream") == true)
                    return String(buffer: response.body)
                }
                group.addTask {
                    while hub.openStreams == 0 { try await Task.sleep(for: .milliseconds(10)) }
                    hub.publish(.owner(aliceID), name: "job", data: "{\"for\":\"alice\"}")
                    hub.publish(.owner(bobID), name: "job", data: "{\"for\":\"bob\"}")
                    hub.publish(.operators, name: "cluster", data: "{\"for\":\"operators\"}")
                    try await Task.sleep(for: .milliseconds(100))
                    hub.close()
                    return nil
                }
                var body = ""
                for try await result in group { if let result { body = result } }
                return body
            }
            #expect(text.contains("retry:"))
            #expect(text.contains("{\"for\":\"bob\"}"))
            #expect(!text.contains("alice"))
            #expect(!text.contains("operators"))
            #expect(text.contains("id: \(hub.epoch)-2"))
            // Without a session there is no stream at all.
            #expect(try await client.execute(uri: "/events", method: .get).status == .unauthorized)
        }
    }
}
