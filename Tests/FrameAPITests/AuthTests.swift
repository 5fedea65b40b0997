import FrameAPI
import Foundation
import HummingbirdTesting
import Testing

@Suite("Accounts and tokens")
struct AuthTests {
    @Test func registerLoginAndMe() async throws {
        try await Harness.run { h, client in
            let registered = try await client.execute(
                uri: "/auth/register", method: .post, headers: h.json,
                body: Harness.body(["email": "Alice@Example.com", "password": Harness.password, "name": "Alice"]))
            #expect(registered.status == .created)
            let user = try registered.decode(Registered.self)
            #expect(user.email == "alice@example.com")

            let login = try await client.execute(
                uri: "/auth/login", method: .post, headers: h.json,
                body: Harness.body(["email": "alice@example.com", "password": Harness.password]))
            #expect(login.status == .ok)
            let token = try login.decode(Token.self)
            #expect(token.tokenType == "Bearer")
            #expect(token.expiresIn == 3600)

            let me = try await client.execute(uri: "/auth/me", method: .get, headers: h.auth(token.accessToken))
            #expect(me.status == .ok)
            struct Me: Decodable { var id: UUID; var email: String; var name: String; var role: String; var createdAt: Date }
            let profile = try me.decode(Me.self)
            #expect(profile.id == user.id)
            #expect(profile.name == "Alice")
            #expect(profile.role == "user")
        }
    }

    @Test(arguments: ["short1!A", "alllowercase1!", "NoDigitsHere!", "NoSymbols123", "Sh0rt!"])
    func weakPasswordsAreRefused(_ password: String) async throws {
        try await Harness.run { h, client in
            let response = try await client.execute(
                uri: "/auth/register", method: .post, headers: h.json,
                body: Harness.body(["email": "weak@example.com", "password": password]))
            if password == "short1!A" {
                // Exactly 8 characters with upper case, digit and symbol is strong enough.
                #expect(response.status == .created)
            } else {
                #expect(response.status == .unprocessableContent)
                #expect(response.problemCode == "VALIDATION_FAILED")
            }
        }
    }

    @Test func badEmailIsRefused() async throws {
        try await Harness.run { h, client in
            for email in ["nobody", "a@b", "two@@example.com", "sp ace@example.com"] {
                let response = try await client.execute(
                    uri: "/auth/register", method: .post, headers: h.json,
                    body: Harness.body(["email": email, "password": Harness.password]))
                #expect(response.status == .unprocessableContent, "\(email)")
                #expect(response.problemCode == "VALIDATION_FAILED")
            }
        }
    }

    @Test func duplicateEmailIsAConflict() async throws {
        try await Harness.run { h, client in
            _ = try await h.user(client, email: "dup@example.com")
            let again = try await client.execute(
                uri: "/auth/register", method: .post, headers: h.json,
                body: Harness.body(["email": "DUP@example.com", "password": Harness.password]))
            #expect(again.status == .conflict)
            #expect(again.problemCode == "CONFLICT")
        }
    }

    @Test func badCredentialsGetTheSameAnswer() async throws {
        try await Harness.run { h, client in
            _ = try await h.user(client, email: "bob@example.com")
            let wrongPassword = try await client.execute(
                uri: "/auth/login", method: .post, headers: h.json,
                body: Harness.body(["email": "bob@example.com", "password": "Wr0ng!pass"]))
            let unknown = try await client.execute(
                uri: "/auth/login", method: .post, headers: h.json,
                body: Harness.body(["email": "nobody@example.com", "password": Harness.password]))
            #expect(wrongPassword.status == .unauthorized)
            #expect(unknown.status == .unauthorized)
            #expect(wrongPassword.problemCode == "UNAUTHORIZED")
            #expect(try wrongPassword.decode(Problem.self).detail == unknown.decode(Problem.self).detail)
        }
    }

    @Test func operatorEndpointsTakeTheAdminTokenOrAnAdminUser() async throws {
        try await Harness.run { h, client in
            let (token, id) = try await h.user(client)
            let asUser = try await client.execute(uri: "/admin/ping", method: .get, headers: h.auth(token))
            #expect(asUser.status == .forbidden)
            let withAdminToken = try await client.execute(uri: "/admin/ping", method: .get, headers: h.auth("admin-token"))
            #expect(withAdminToken.status == .ok)
            try await h.db.withConnection { try $0.query("UPDATE users SET role = 'admin' WHERE id = $1::uuid", id) }
            let asAdmin = try await client.execute(uri: "/admin/ping", method: .get, headers: h.auth(token))
            #expect(asAdmin.status == .ok)
        }
    }

    @Test func databaseOutageIsAProblemDocument() async throws {
        try await Harness.run { h, client in
            let (token, _) = try await h.user(client)
            await h.db.shutdown()
            let response = try await client.execute(uri: "/videos", method: .get, headers: h.auth(token))
            #expect(response.status == .serviceUnavailable)
            #expect(response.problemCode == "DATABASE_UNAVAILABLE")
            #expect(response.headers[.retryAfter] == "2", "a 503 says when to try again")
        }
    }
}
