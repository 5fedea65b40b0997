import FrameCore
import Foundation
@testable import FrameStore
import Testing

@Suite("UserStore", .enabled(if: TestDatabase.enabled))
struct UserStoreTests {
    @Test("create, find, and a case-insensitive duplicate e-mail is a typed conflict")
    func users() async throws {
        try await TestDatabase.withFresh { db, _ in
            let users = UserStore(database: db)
            let u = try await users.create(email: " Alice@Example.COM ", passwordHash: "hash", name: "Alice", role: .admin)
            #expect(u.email == "alice@example.com" && u.role == .admin && u.name == "Alice")
            #expect(try await users.find(email: "ALICE@example.com")?.id == u.id)
            #expect(try await users.find(id: u.id)?.email == "alice@example.com")
            #expect(try await users.find(id: UUID()) == nil)
            #expect(try await users.count() == 1)
            do {
                _ = try await users.create(email: "alice@EXAMPLE.com", passwordHash: "h2")
                Issue.record("duplicate e-mail accepted")
            } catch let error as StoreError {
                guard case .uniqueViolation(let constraint, _) = error else {
                    Issue.record("wrong error \(error)")
                    return
                }
                #expect(constraint == "users_email_key")
                #expect(error.code == .conflict)
            }
        }
    }

    @Test("a NUL in a text parameter is refused, not cut short by libpq")
    func nulParametersAreRefused() async throws {
        try await TestDatabase.withFresh { db, _ in
            let users = UserStore(database: db)
            do {
                _ = try await users.create(email: "bob@example.com\u{0}.evil", passwordHash: "hash")
                Issue.record("a NUL was accepted")
            } catch let error as StoreError {
                guard case .invalidParameter(let message) = error else { Issue.record("wrong error \(error)"); return }
                #expect(message.contains("$2"))
                #expect(error.code == .validationFailed)
            }
            #expect(try await users.count() == 0, "nothing stored under the truncated address")
            try await db.withConnection { (conn) throws(any Error) -> Void in
                #expect(throws: StoreError.self) { try conn.query("SELECT $1::text AS t", "a\u{0}b") }
                #expect(try conn.query("SELECT $1::text AS t", "a\u{1}b").first?.string("t") == "a\u{1}b")
            }
        }
    }
}
