@testable import FrameAPI
import Foundation
import HummingbirdTesting
import NIOCore
import Testing

/// Logins and registrations are rate-limited and their bcrypt work is bounded.
@Suite("Login throttling")
struct LoginThrottleTests {
    static func login(_ h: Harness, _ client: some TestClientProtocol, _ email: String, _ password: String) async throws -> TestResponse {
        try await client.execute(
            uri: "/auth/login", method: .post, headers: h.json, body: Harness.body(["email": email, "password": password]))
    }

    @Test func wrongPasswordsLockTheAccountWithRetryAfter() async throws {
        try await Harness.run(configure: { $0.loginLimitPerAccount = RateLimit(attempts: 3, per: .seconds(600)) }) { h, client in
            _ = try await h.user(client, email: "bob@example.com")  // one successful login, given back
            for _ in 0..<3 {
                #expect(try await Self.login(h, client, "bob@example.com", "Wr0ng!pass").status == .unauthorized)
            }
            for password in ["Wr0ng!pass", Harness.password] {
                let limited = try await Self.login(h, client, "BOB@example.com", password)
                #expect(limited.status == .tooManyRequests)
                #expect(limited.problemCode == "RATE_LIMITED")
                let retry = try #require(limited.headers[.retryAfter].flatMap(Int.init))
                #expect((1...200).contains(retry), "one attempt back after 600/3 s")
            }
            // Unknown accounts are limited the same way (the answer tells nothing about which exist).
            for _ in 0..<3 { _ = try await Self.login(h, client, "ghost@example.com", "Wr0ng!pass") }
            #expect(try await Self.login(h, client, "ghost@example.com", "Wr0ng!pass").status == .tooManyRequests)
            // Other accounts are not affected.
            _ = try await h.user(client, email: "carol@example.com")
        }
    }

    @Test func oneAddressTryingManyAccountsIsLimited() async throws {
        try await Harness.run(configure: { $0.loginLimitPerAddress = RateLimit(attempts: 5, per: .seconds(60)) }) { h, client in
            var answers: [Int] = []
            for i in 0..<7 {
                answers.append(try await Self.login(h, client, "guess\(i)@example.com", "Wr0ng!pass").status.code)
            }
            #expect(answers == [401, 401, 401, 401, 401, 429, 429])
            let register = try await client.execute(
                uri: "/auth/register", method: .post, headers: h.json,
                body: Harness.body(["email": "new@example.com", "password": Harness.password]))
            #expect(register.status == .tooManyRequests, "registrations count against the address too")
        }
    }

    /// `POST /auth/refresh` draws on the client address's budget like login (refresh tokens name no
    /// account until looked up): once it is spent, even a valid refresh token is answered 429
    /// RATE_LIMITED as a problem document with `Retry-After`, before the token is looked at.
    @Test func refreshIsThrottledPerAddressWithRetryAfter() async throws {
        try await Harness.run(configure: { $0.loginLimitPerAddress = RateLimit(attempts: 5, per: .seconds(600)) }) { h, client in
            let credentials = Harness.body(["email": "rita@example.com", "password": Harness.password])
            #expect(try await client.execute(uri: "/auth/register", method: .post, headers: h.json, body: credentials).status == .created)
            let login = try await client.execute(uri: "/auth/login", method: .post, headers: h.json, body: credentials)
            #expect(login.status == .ok)
            func refresh(_ token: String) async throws -> TestResponse {
                try await client.execute(uri: "/auth/refresh", method: .post, headers: h.json, body: Harness.body(["refreshToken": token]))
            }
            struct Pair: Decodable { var refreshToken: String }
            let rotated = try await refresh(try login.decode(Pair.self).refreshToken)
            #expect(rotated.status == .ok, "attempt 3 of 5")
            let valid = try rotated.decode(Pair.self).refreshToken
            #expect(try await refresh("guess-1").status == .unauthorized)
            #expect(try await refresh("guess-2").status == .unauthorized, "attempt 5 of 5")
            let limited = try await refresh(valid)
            #expect(limited.status == .tooManyRequests)
            #expect(limited.headers[.contentType] == "application/problem+json")
            #expect(limited.problemCode == "RATE_LIMITED")
            struct Problem: Decodable { var status: Int; var detail: String }
            let problem = try limited.decode(Problem.self)
            #expect(problem.status == 429)
            #expect(problem.detail.contains("try again later"))
            let retry = try #require(limited.headers[.retryAfter].flatMap(Int.init), "Retry-After in whole seconds")
            #expect((1...120).contains(retry), "one attempt back after 600/5 s, got \(retry)")
            // The refusal came before the token was used: it was not rotated away.
            let rows = try await h.db.withConnection { conn in
                try conn.query("SELECT count(*) AS n FROM refresh_tokens WHERE token_hash = $1 AND replaced_by IS NULL AND revoked_at IS NULL",
                               RefreshTokens.hash(valid)).first!.int("n")
            }
            #expect(rows == 1)
        }
    }

    /// With one bcrypt at a time and no waiting room, a burst is answered 503 at once instead of queueing.
    @Test func excessBcryptWorkIsRefusedQuickly() async throws {
        try await Harness.run(configure: { $0.bcryptConcurrency = 1; $0.bcryptQueue = 0; $0.bcryptCost = 10 }) { h, client in
            let clock = ContinuousClock()
            let results = try await withThrowingTaskGroup(of: (Int, String?, Duration).self) { group in
                for i in 0..<6 {
                    group.addTask {
                        let start = clock.now
                        let r = try await Self.login(h, client, "p\(i)@example.com", "Wr0ng!pass")
                        return (r.status.code, r.headers[.retryAfter], clock.now - start)
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let busy = results.filter { $0.0 == 503 }
            #expect(results.filter { $0.0 == 401 }.count >= 1)
            #expect(busy.count >= 1, "\(results)")
            #expect(busy.allSatisfy { $0.1 == "1" })
            let slowest = results.filter { $0.0 == 401 }.map(\.2).max()!
            #expect(busy.allSatisfy { $0.2 < slowest }, "refusals do not wait for the running bcrypt")
        }
    }

    /// Registering a taken address costs the same bcrypt round as a new one, so its timing tells nothing.
    @Test func registerHashesWhetherOrNotTheAddressIsTaken() async throws {
        try await Harness.run { (h: Harness, client: any TestClientProtocol) async throws -> Void in
            let register = { @Sendable (email: String) async throws -> TestResponse in
                try await client.execute(
                    uri: "/auth/register", method: .post, headers: h.json,
                    body: Harness.body(["email": email, "password": Harness.password]))
            }
            #expect(try await register("first@example.com").status == .created)
            let before = h.api.hasher.gate.completed
            #expect(try await register("FIRST@example.com").status == .conflict)
            #expect(h.api.hasher.gate.completed == before + 1)
        }
    }
}
