import FrameCore
import Foundation

/// Accounts: creation with a unique (case-insensitive) e-mail and look-ups.
///
/// Passwords arrive already hashed (the API owns bcrypt); the store never sees
/// a plain password. A taken address surfaces as
/// ``StoreError/uniqueViolation(constraint:message:)`` with constraint
/// `users_email_key`, which the API maps to 409.
public struct UserStore: Sendable {
    let database: Database

    public init(database: Database) {
        self.database = database
    }

    static let columns = "id, email, password_hash, name, role, created_at"

    /// The canonical form stored and searched: trimmed and lower-cased.
    public static func normalize(email: String) -> String {
        email.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
    }

    public func create(
        email: String, passwordHash: String, name: String = "", role: UserRole = .user, id: UUID = UUID()
    ) async throws -> UserRecord {
        let email = Self.normalize(email: email)
        return try await database.withConnection { conn in
            try UserRecord(row: conn.query("""
                INSERT INTO users (id, email, password_hash, name, role) VALUES ($1::uuid, $2, $3, $4, $5)
                RETURNING \(Self.columns)
                """, id, email, passwordHash, name, role.rawValue).first!)
        }
    }

    public func find(email: String) async throws -> UserRecord? {
        let email = Self.normalize(email: email)
        return try await database.withConnection { conn in
            try conn.query("SELECT \(Self.columns) FROM users WHERE email = $1", email).first.map(UserRecord.init(row:))
        }
    }

    public func find(id: UUID) async throws -> UserRecord? {
        try await database.withConnection { conn in
            try conn.query("SELECT \(Self.columns) FROM users WHERE id = $1::uuid", id).first.map(UserRecord.init(row:))
        }
    }

    /// Number of accounts (e.g. to decide whether to bootstrap the first admin).
    public func count() async throws -> Int {
        try await database.withConnection { conn in
            try conn.query("SELECT count(*) AS n FROM users").first!.int("n")
        }
    }
}
