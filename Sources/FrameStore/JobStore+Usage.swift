import FrameCore
import Foundation

/// What one user holds, for the API's per-user quotas.
public struct UserUsage: Sendable, Equatable {
    /// Uploaded bytes of the user's jobs whose files are still kept (every status but EXPIRED).
    public var storedBytes: Int64
    /// Jobs QUEUED or PROCESSING.
    public var activeJobs: Int

    public init(storedBytes: Int64, activeJobs: Int) {
        self.storedBytes = storedBytes
        self.activeJobs = activeJobs
    }
}

extension JobStore {
    /// The user's stored bytes and active jobs, in one statement (`jobs_user_created` narrows it to the user).
    public func usage(userID: UUID) async throws -> UserUsage {
        try await database.withConnection { conn in
            let row = try conn.query("""
                SELECT coalesce(sum(size_bytes) FILTER (WHERE status <> 'EXPIRED'), 0)::bigint AS stored,
                       count(*) FILTER (WHERE status IN ('QUEUED', 'PROCESSING'))::int AS active
                FROM jobs WHERE user_id = $1::uuid
                """, userID).first!
            return UserUsage(storedBytes: try row.int64("stored"), activeJobs: try row.int("active"))
        }
    }
}
