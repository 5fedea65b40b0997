import FrameCore
import Foundation

/// Statements shared by the job and lease stores, run inside their transactions.
///
/// Status changes go through ``setJobStatus(_:to:reason:node:errorCode:errorMessage:expiresAt:)``
/// only, whose SQL guard is derived from ``JobStatus/predecessors(of:)``; that
/// is what makes the state machine in FrameCore the single authority.
extension PostgresConnection {
    enum StatusChange {
        case changed(previous: JobStatus)
        case notAllowed(current: JobStatus)
        case missing
    }

    /// A text[] literal for a list of enum raw values (values are our own identifiers, no quoting needed).
    static func textArray<S: Sequence>(_ values: S) -> String where S.Element: RawRepresentable, S.Element.RawValue == String {
        "{" + values.map(\.rawValue).joined(separator: ",") + "}"
    }

    func recordEvent(
        job: UUID, kind: JobEventKind, segment: UInt32? = nil, node: String? = nil, epoch: UInt64? = nil,
        reason: String? = nil, detail: String? = nil
    ) throws {
        try query(prepared: """
            INSERT INTO job_events (job_id, kind, segment, node, epoch, reason, detail)
            VALUES ($1::uuid, $2, $3::int, $4, $5::bigint, $6, $7)
            """, job, kind.rawValue, segment.flatMap { Int32(exactly: $0) }, node,
            // A fence event may record an epoch a hostile node made up: out of range is NULL, never a trap.
            epoch.flatMap { Int64(exactly: $0) }, reason, detail)
    }

    /// Moves a job to `target` if the state machine allows it from its current
    /// status, records a `status` event, and reports what happened.
    func setJobStatus(
        _ job: UUID, to target: JobStatus, reason: String, node: String? = nil, errorCode: ErrorCode? = nil,
        errorMessage: String? = nil, expiresAt: Date? = nil
    ) throws -> StatusChange {
        let finished = target == .completed || target == .failed || target == .cancelled
        let row = try query("""
            UPDATE jobs j SET status = $2, updated_at = now(),
                completed_at = CASE WHEN $3::bool THEN now() ELSE j.completed_at END,
                error_code = COALESCE($4, j.error_code),
                error_message = COALESCE($5, j.error_message),
                expires_at = COALESCE($6::timestamptz, j.expires_at)
            FROM (SELECT id, status FROM jobs WHERE id = $1::uuid FOR UPDATE) old
            WHERE j.id = old.id AND old.status = ANY($7::text[])
            RETURNING old.status AS previous
            """, job, target.rawValue, finished, errorCode?.name, errorMessage, expiresAt,
            Self.textArray(JobStatus.predecessors(of: target))).first
        if let row {
            let previous: JobStatus = try row.enum("previous")
            try recordEvent(
                job: job, kind: .status, node: node, reason: reason, detail: "\(previous.rawValue)->\(target.rawValue)")
            if target == .failed || target == .completed {
                // The outbox row commits with the status or not at all: no finished job goes unannounced.
                try enqueueNotifications(job, event: target == .failed ? "failed" : "completed")
            }
            return .changed(previous: previous)
        }
        guard let current = try query("SELECT status FROM jobs WHERE id = $1::uuid", job).first else { return .missing }
        return .notAllowed(current: try current.enum("status"))
    }

    /// Cancels every pending or leased segment of a job; returns the leases that were live.
    func cancelOpenSegments(_ job: UUID, reason: String) throws -> [HeldLease] {
        let rows = try query("""
            WITH old AS (
                SELECT idx, state, node, epoch FROM segments
                WHERE job_id = $1::uuid AND state = ANY($2::text[])
                ORDER BY idx FOR UPDATE
            ), upd AS (
                UPDATE segments s SET state = 'cancelled', lease_expires_at = NULL
                FROM old WHERE s.job_id = $1::uuid AND s.idx = old.idx
            ), ev AS (
                INSERT INTO job_events (job_id, kind, segment, node, epoch, reason)
                SELECT $1::uuid, 'lease_cancelled', idx, node, epoch, $3 FROM old WHERE state = 'leased'
            )
            SELECT idx, node, epoch FROM old WHERE state = 'leased' ORDER BY idx
            """, job, Self.textArray(SegmentState.predecessors(of: .cancelled)), reason).rows
        return try rows.map { row in
            HeldLease(
                ref: LeaseRef(jobID: job, segment: UInt32(try row.int("idx")), epoch: UInt64(try row.int64("epoch"))),
                node: try row.string("node"))
        }
    }

    /// Fails a job (if it may still fail) and cancels its open segments.
    /// Returns nil when the job was already finished or does not exist.
    func failJob(_ job: UUID, code: ErrorCode, message: String, reason: String, node: String? = nil) throws -> JobFailure? {
        guard case .changed = try setJobStatus(
            job, to: .failed, reason: reason, node: node, errorCode: code, errorMessage: message) else {
            return nil
        }
        let leases = try cancelOpenSegments(job, reason: "job failed: \(code.name)")
        return JobFailure(jobID: job, code: code, message: message, cancelledLeases: leases)
    }
}
