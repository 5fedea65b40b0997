import FrameCore
import Foundation

/// One outbox row due for delivery, with what the message needs about its job.
public struct PendingNotification: Sendable, Hashable {
    public var id: Int64
    public var jobID: UUID
    /// `failed` or `completed`.
    public var event: String
    /// `email` or `webhook`.
    public var channel: String
    /// Attempts made before this one.
    public var attempts: Int
    public var ownerEmail: String
    public var originalFilename: String
    public var status: JobStatus
    public var frameCount: Int64
    public var errorCode: String?
    public var errorMessage: String?
    public var finishedAt: Date
}

/// An outbox row as stored, for inspection (tests, operators).
public struct NotificationRecord: Sendable, Hashable {
    public var id: Int64
    public var jobID: UUID
    public var event: String
    public var channel: String
    /// `pending`, `delivered`, `skipped` or `gave_up`.
    public var state: String
    public var attempts: Int
    public var lastError: String?
    public var nextAttemptAt: Date
}

/// The notification outbox (`notification_outbox`): rows are written by the
/// job status change itself (see `setJobStatus`), taken by the dispatcher
/// with ``claimDue(limit:hold:)`` and closed with the outcome of each attempt.
public struct NotificationStore: Sendable {
    let database: Database

    public init(database: Database) {
        self.database = database
    }

    /// Takes up to `limit` due rows, pushing their `next_attempt_at` `hold` into
    /// the future so no other dispatcher takes them while they are in flight.
    public func claimDue(limit: Int, hold: Duration) async throws -> [PendingNotification] {
        let holdSeconds = Double(hold.components.seconds) + Double(hold.components.attoseconds) / 1e18
        return try await database.transaction { conn in
            try conn.query("""
                WITH due AS (
                    SELECT id FROM notification_outbox
                    WHERE state = 'pending' AND next_attempt_at <= now()
                    ORDER BY next_attempt_at, id LIMIT $1::int
                    FOR UPDATE SKIP LOCKED
                ), held AS (
                    UPDATE notification_outbox o SET next_attempt_at = now() + make_interval(secs => $2::float8)
                    FROM due WHERE o.id = due.id
                    RETURNING o.id, o.job_id, o.event, o.channel, o.attempts, o.created_at
                )
                SELECT h.id, h.job_id, h.event, h.channel, h.attempts, u.email, j.original_filename, j.status,
                       j.frame_count, j.error_code, j.error_message, COALESCE(j.completed_at, h.created_at) AS finished_at
                FROM held h JOIN jobs j ON j.id = h.job_id JOIN users u ON u.id = j.user_id
                ORDER BY h.id
                """, limit, holdSeconds).rows.map { row in
                PendingNotification(
                    id: try row.int64("id"), jobID: try row.uuid("job_id"), event: try row.string("event"),
                    channel: try row.string("channel"), attempts: try row.int("attempts"),
                    ownerEmail: try row.string("email"), originalFilename: try row.string("original_filename"),
                    status: try row.enum("status"), frameCount: try row.int64("frame_count"),
                    errorCode: try row.optionalString("error_code"), errorMessage: try row.optionalString("error_message"),
                    finishedAt: try row.date("finished_at"))
            }
        }
    }

    public func markDelivered(id: Int64) async throws {
        try await database.withConnection { conn in
            try conn.query("""
                UPDATE notification_outbox SET state = 'delivered', attempts = attempts + 1, last_attempt_at = now(),
                    delivered_at = now(), last_error = NULL
                WHERE id = $1::bigint
                """, id)
        }
    }

    /// Records a failed attempt: due again after `retryAfter`, or given up for good when it is nil.
    public func markFailed(id: Int64, error: String, retryAfter: Duration?) async throws {
        let seconds = retryAfter.map { Double($0.components.seconds) + Double($0.components.attoseconds) / 1e18 }
        try await database.withConnection { conn in
            try conn.query("""
                UPDATE notification_outbox SET attempts = attempts + 1, last_attempt_at = now(), last_error = $2,
                    state = CASE WHEN $3::float8 IS NULL THEN 'gave_up' ELSE 'pending' END,
                    next_attempt_at = CASE WHEN $3::float8 IS NULL THEN next_attempt_at
                                           ELSE now() + make_interval(secs => $3::float8) END
                WHERE id = $1::bigint
                """, id, String(error.prefix(1000)), seconds)
        }
    }

    /// Closes a row that will never be sent (channel not configured, event not subscribed).
    public func markSkipped(id: Int64, reason: String) async throws {
        try await database.withConnection { conn in
            try conn.query("""
                UPDATE notification_outbox SET state = 'skipped', last_error = $2 WHERE id = $1::bigint
                """, id, reason)
        }
    }

    /// A job's outbox rows, oldest first.
    public func list(jobID: UUID) async throws -> [NotificationRecord] {
        try await database.withConnection { conn in
            try conn.query("""
                SELECT id, job_id, event, channel, state, attempts, last_error, next_attempt_at
                FROM notification_outbox WHERE job_id = $1::uuid ORDER BY id
                """, jobID).rows.map { row in
                NotificationRecord(
                    id: try row.int64("id"), jobID: try row.uuid("job_id"), event: try row.string("event"),
                    channel: try row.string("channel"), state: try row.string("state"), attempts: try row.int("attempts"),
                    lastError: try row.optionalString("last_error"), nextAttemptAt: try row.date("next_attempt_at"))
            }
        }
    }
}

extension PostgresConnection {
    /// Writes one pending outbox row per channel for a job event; the dispatcher
    /// skips channels that are not configured.
    func enqueueNotifications(_ job: UUID, event: String) throws {
        try query("""
            INSERT INTO notification_outbox (job_id, event, channel)
            VALUES ($1::uuid, $2, 'email'), ($1::uuid, $2, 'webhook')
            """, job, event)
    }
}
