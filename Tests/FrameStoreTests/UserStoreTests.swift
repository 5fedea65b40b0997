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
}
