import FrameCore
import Foundation

/// Paged, filtered job listings for the user-facing API.
///
/// Kept apart from ``JobStore``'s core so the API's needs (a status filter and
/// a total for page counts) do not grow the lease-facing code. Both queries
/// use the same `WHERE` so `totalElements` always matches what paging shows.
extension JobStore {
    /// Jobs newest first, optionally of one user (nil: all users) and one status.
    public func list(userID: UUID?, status: JobStatus?, limit: Int, offset: Int) async throws -> [JobRecord] {
        try await database.withConnection { conn in
            try conn.query("""
                SELECT \(JobRecord.columns) FROM jobs
                WHERE ($1::uuid IS NULL OR user_id = $1::uuid) AND ($2::text IS NULL OR status = $2::text)
                ORDER BY created_at DESC, id LIMIT $3::int OFFSET $4::int
                """, userID, status?.rawValue, limit, offset).rows.map(JobRecord.init(row:))
        }
    }

    /// How many jobs ``list(userID:status:limit:offset:)`` would page through.
    public func count(userID: UUID?, status: JobStatus?) async throws -> Int {
        try await database.withConnection { conn in
            try conn.query("""
                SELECT count(*) AS n FROM jobs
                WHERE ($1::uuid IS NULL OR user_id = $1::uuid) AND ($2::text IS NULL OR status = $2::text)
                """, userID, status?.rawValue).first!.int("n")
        }
    }
}
