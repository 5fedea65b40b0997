import FrameCore
import Foundation

/// Whole-cluster figures for monitoring (`/metrics`).
extension JobStore {
    /// How many jobs are in each status; statuses without jobs are absent.
    public func statusCounts() async throws -> [JobStatus: Int] {
        try await database.withConnection { conn in
            var counts: [JobStatus: Int] = [:]
            for row in try conn.query("SELECT status, count(*)::int AS n FROM jobs GROUP BY status").rows {
                counts[try row.enum("status") as JobStatus] = try row.int("n")
            }
            return counts
        }
    }
}
