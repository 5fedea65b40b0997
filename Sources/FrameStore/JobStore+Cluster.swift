import FrameCore
import Foundation

/// Figures for the operators' live dashboard: recent audit events across all jobs and the queue.
extension JobStore {
    /// Job events with an id above `afterID`, oldest first (at most `limit`); with `afterID` 0,
    /// the newest `limit` events.
    public func recentEvents(afterID: Int64, limit: Int = 50) async throws -> [JobEvent] {
        try await database.withConnection { conn in
            let rows = try conn.query("""
                SELECT * FROM (
                  SELECT id, job_id, at, kind, segment, node, epoch, reason, detail FROM job_events
                  WHERE id > $1::bigint ORDER BY id DESC LIMIT $2::int) recent
                ORDER BY id
                """, afterID, limit).rows
            return try rows.map(JobEvent.init(row:))
        }
    }

    /// Segments waiting for a node (pending, of QUEUED or PROCESSING jobs).
    public func queueDepth() async throws -> Int {
        try await database.withConnection { conn in
            try conn.query("""
                SELECT count(*)::int AS n FROM segments s JOIN jobs j ON j.id = s.job_id
                WHERE s.state = 'pending' AND j.status IN ('QUEUED', 'PROCESSING')
                """).rows.first?.int("n") ?? 0
        }
    }
}
