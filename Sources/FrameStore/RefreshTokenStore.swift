import FrameCore
import Foundation

/// Refresh tokens, stored as hashes only (the API hashes; the store never sees a token).
///
/// Each use rotates: the presented token is revoked and points at its
/// successor. Presenting a token that was already rotated means it was copied
/// (two parties hold it), so the whole family (every token descending from the
/// same login) is revoked and both parties must log in again.
public struct RefreshTokenStore: Sendable {
    let database: Database

    public init(database: Database) {
        self.database = database
    }

    /// The outcome of ``rotate(hash:newID:newHash:expiresAt:)``.
    public enum Rotation: Sendable, Equatable {
        /// The token was valid: here is its user; the new token is stored.
        case rotated(userID: UUID)
        /// Unknown, expired or revoked (a reused rotated token also revokes its family).
        case refused
    }

    /// Stores the first token of a new login.
    public func issue(id: UUID = UUID(), userID: UUID, hash: String, expiresAt: Date) async throws {
        try await database.withConnection { conn in
            try conn.query("""
                INSERT INTO refresh_tokens (id, user_id, family, token_hash, expires_at)
                VALUES ($1::uuid, $2::uuid, $1::uuid, $3, $4::timestamptz)
                """, id, userID, hash, expiresAt)
        }
    }

    /// Exchanges the token with hash `hash` for a new one (`newHash`), in one transaction.
    public func rotate(hash: String, newID: UUID = UUID(), newHash: String, expiresAt: Date) async throws -> Rotation {
        try await database.transaction { conn in
            guard let row = try conn.query("""
                SELECT id, user_id, family, revoked_at IS NOT NULL AS revoked, expires_at <= now() AS expired
                FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE
                """, hash).first else { return .refused }
            let family = try row.uuid("family")
            if try row.bool("revoked") {
                try conn.query("""
                    UPDATE refresh_tokens SET revoked_at = COALESCE(revoked_at, now()) WHERE family = $1::uuid
                    """, family)
                return .refused
            }
            if try row.bool("expired") { return .refused }
            let userID = try row.uuid("user_id")
            try conn.query("""
                INSERT INTO refresh_tokens (id, user_id, family, token_hash, expires_at)
                VALUES ($1::uuid, $2::uuid, $3::uuid, $4, $5::timestamptz)
                """, newID, userID, family, newHash, expiresAt)
            try conn.query("UPDATE refresh_tokens SET revoked_at = now(), replaced_by = $2::uuid WHERE id = $1::uuid",
                           try row.uuid("id"), newID)
            return .rotated(userID: userID)
        }
    }

    /// Revokes the family of the token with hash `hash` (logout); false when no such token exists.
    @discardableResult
    public func revokeFamily(hash: String) async throws -> Bool {
        try await database.withConnection { conn in
            try conn.query("""
                UPDATE refresh_tokens SET revoked_at = COALESCE(revoked_at, now())
                WHERE family = (SELECT family FROM refresh_tokens WHERE token_hash = $1)
                """, hash).affectedRows > 0
        }
    }

    /// Revokes every refresh token of a user (logout everywhere).
    public func revokeAll(userID: UUID) async throws {
        try await database.withConnection { conn in
            try conn.query("UPDATE refresh_tokens SET revoked_at = now() WHERE user_id = $1::uuid AND revoked_at IS NULL",
                           userID)
        }
    }
}

/// Who fetched which archive or download link, and when; the per-user
/// download rate limit counts these rows.
public struct DownloadAuditStore: Sendable {
    let database: Database

    public init(database: Database) {
        self.database = database
    }

    /// What was fetched.
    public enum Kind: String, Sendable, CaseIterable {
        /// The ZIP, with an access token.
        case archive
        /// A signed link was issued.
        case link
        /// The ZIP, through a signed link (attributed to the job's owner).
        case signedArchive = "signed_archive"
    }

    /// One audit row.
    public struct Entry: Sendable, Hashable {
        public var userID: UUID
        public var jobID: UUID
        public var kind: Kind
        public var remote: String?
        public var at: Date
    }

    /// The outcome of ``admit(userID:jobID:kind:remote:limit:window:)``.
    public enum Admission: Sendable, Equatable {
        case admitted
        /// Over the limit; the oldest counted fetch leaves the window after this many seconds.
        case limited(retryAfterSeconds: Int)
    }

    /// Records a fetch. With a `limit`, the fetch counts against it: it is refused (nothing
    /// recorded) when the user already has `limit` counted fetches in the last `window`, and the
    /// answer says when the oldest leaves the window. Without one it is recorded uncounted (a
    /// link being issued, a ranged request continuing a download).
    public func admit(userID: UUID, jobID: UUID, kind: Kind, remote: String?, limit: Int?, window: Duration)
        async throws -> Admission
    {
        let seconds = window.seconds
        return try await database.transaction { conn in
            if let limit {
                // Serialises one user's admissions, so parallel requests cannot all slip under the limit.
                try conn.query("SELECT pg_advisory_xact_lock(hashtext('dl:' || $1))", userID)
                let row = try conn.query("""
                    SELECT count(*) AS n,
                           COALESCE(ceil(extract(epoch FROM min(at) + make_interval(secs => $2::float8) - now())), 0)::int
                               AS retry
                    FROM download_audit
                    WHERE user_id = $1::uuid AND counted AND at > now() - make_interval(secs => $2::float8)
                    """, userID, seconds).first!
                if try row.int("n") >= limit { return .limited(retryAfterSeconds: max(1, try row.int("retry"))) }
            }
            try conn.query("""
                INSERT INTO download_audit (user_id, job_id, kind, counted, remote)
                VALUES ($1::uuid, $2::uuid, $3, $4::bool, $5)
                """, userID, jobID, kind.rawValue, limit != nil, remote)
            return .admitted
        }
    }

    /// A job's audit rows, oldest first.
    public func entries(jobID: UUID) async throws -> [Entry] {
        try await database.withConnection { conn in
            try conn.query("SELECT user_id, job_id, kind, remote, at FROM download_audit WHERE job_id = $1::uuid ORDER BY id",
                           jobID).rows.map { row in
                Entry(userID: try row.uuid("user_id"), jobID: try row.uuid("job_id"),
                      kind: Kind(rawValue: try row.string("kind")) ?? .archive, remote: try row.optionalString("remote"),
                      at: try row.date("at"))
            }
        }
    }
}
