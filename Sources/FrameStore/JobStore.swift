import FrameCore
import Foundation

/// Jobs: creation with their planned segments, look-ups, and the status
/// changes that do not come from a node (cancel, complete, fail, expire).
///
/// Every status change is validated by ``JobStatus`` and recorded in
/// `job_events`; cancelling or failing a job cancels its open segments in the
/// same transaction and returns the leases that were live, so the caller can
/// tell those nodes to stop.
public struct JobStore: Sendable {
    let database: Database

    public init(database: Database) {
        self.database = database
    }

    /// Creates a QUEUED job and all its segments (pending) in one transaction.
    public func create(_ job: NewJob) async throws -> JobRecord {
        guard !job.segments.isEmpty else { throw StoreError.invalidState("a job needs at least one segment") }
        for (i, spec) in job.segments.enumerated() where spec.index != UInt32(i) {
            throw StoreError.invalidState("segment at position \(i) has index \(spec.index)")
        }
        guard job.maxAttempts > 0 else { throw StoreError.invalidState("maxAttempts must be positive") }
        guard job.maxNodeLosses > 0 else { throw StoreError.invalidState("maxNodeLosses must be positive") }
        let specs = try PostgresJSON(job.segments)
        let labels = try PostgresJSON(job.labelRequirement)
        let frameCount = job.segments.reduce(Int64(0)) { $0 + Int64($1.sampleCount) }
        return try await database.transaction { conn in
            let row = try conn.query("""
                INSERT INTO jobs (id, user_id, original_filename, ext, size_bytes, status, fps_num, fps_den,
                                  format, quality, max_width, max_height, duration_seconds, frame_count,
                                  segment_count, max_attempts, label_requirement, probe, expires_at, max_node_losses)
                VALUES ($1::uuid, $2::uuid, $3, $4, $5::bigint, 'QUEUED', $6::int, $7::int, $8, $9::int, $10::int,
                        $11::int, $12::float8, $13::bigint, $14::int, $15::int, $16::jsonb, $17::jsonb, $18::timestamptz,
                        $19::int)
                RETURNING \(JobRecord.columns)
                """,
                job.id, job.userID, job.originalFilename, job.ext, job.sizeBytes, job.fps.num, job.fps.den,
                job.output.format.storeName, job.output.quality, job.output.maxWidth, job.output.maxHeight,
                job.durationSeconds, frameCount, job.segments.count, job.maxAttempts, labels, job.probeJSON,
                job.expiresAt, job.maxNodeLosses).first!
            try conn.query("""
                INSERT INTO segments (job_id, idx, spec, sample_count)
                SELECT $1::uuid, (e.ord - 1)::int, e.spec, (e.spec->>'sampleCount')::int
                FROM jsonb_array_elements($2::jsonb) WITH ORDINALITY AS e(spec, ord)
                """, job.id, specs)
            try conn.recordEvent(
                job: job.id, kind: .created, reason: "upload planned",
                detail: "\(job.segments.count) segments, \(frameCount) frames")
            return try JobRecord(row: row)
        }
    }

    public func get(id: UUID) async throws -> JobRecord? {
        try await database.withConnection { conn in
            try conn.query("SELECT \(JobRecord.columns) FROM jobs WHERE id = $1::uuid", id).first.map(JobRecord.init(row:))
        }
    }

    /// Jobs newest first; all users' when `userID` is nil (admin view).
    public func list(userID: UUID?, limit: Int = 100, offset: Int = 0) async throws -> [JobRecord] {
        try await database.withConnection { conn in
            try conn.query("""
                SELECT \(JobRecord.columns) FROM jobs
                WHERE $1::uuid IS NULL OR user_id = $1::uuid
                ORDER BY created_at DESC, id LIMIT $2::int OFFSET $3::int
                """, userID, limit, offset).rows.map(JobRecord.init(row:))
        }
    }

    /// Jobs of a user that are not finished (for per-user quotas).
    public func activeCount(userID: UUID) async throws -> Int {
        try await database.withConnection { conn in
            try conn.query("""
                SELECT count(*) AS n FROM jobs WHERE user_id = $1::uuid AND status = ANY($2::text[])
                """, userID, PostgresConnection.textArray(JobStatus.allCases.filter(\.isSchedulable))).first!.int("n")
        }
    }

    public func segments(jobID: UUID) async throws -> [SegmentRecord] {
        try await database.withConnection { conn in
            try conn.query("SELECT \(SegmentRecord.columns) FROM segments WHERE job_id = $1::uuid ORDER BY idx", jobID)
                .rows.map(SegmentRecord.init(row:))
        }
    }

    /// The job's audit trail, oldest first; pass the last seen id to page.
    public func events(jobID: UUID, afterID: Int64 = 0, limit: Int = 1000) async throws -> [JobEvent] {
        try await database.withConnection { conn in
            try conn.query("""
                SELECT id, job_id, at, kind, segment, node, epoch, reason, detail FROM job_events
                WHERE job_id = $1::uuid AND id > $2::bigint ORDER BY id LIMIT $3::int
                """, jobID, afterID, limit).rows.map(JobEvent.init(row:))
        }
    }

    /// Cancels a QUEUED or PROCESSING job. Throws `notFound` for an unknown
    /// job and `invalidState` (INVALID_JOB_STATE, HTTP 409) for a finished one.
    public func cancel(id: UUID, reason: String = "cancelled by user") async throws -> CancelOutcome {
        try await database.transaction { conn in
            switch try conn.setJobStatus(id, to: .cancelled, reason: reason) {
            case .missing:
                throw StoreError.notFound("no job \(id.uuidString.lowercased())")
            case .notAllowed(let current):
                throw StoreError.invalidState("job is \(current.rawValue) and can no longer be cancelled")
            case .changed(let previous):
                let leases = try conn.cancelOpenSegments(id, reason: reason)
                let job = try JobRecord(row: conn.query(
                    "SELECT \(JobRecord.columns) FROM jobs WHERE id = $1::uuid", id).first!)
                return CancelOutcome(previousStatus: previous, job: job, cancelledLeases: leases)
            }
        }
    }

    /// Marks a job COMPLETED once its archive is assembled; every segment must be done.
    public func markCompleted(id: UUID, expiresAt: Date? = nil) async throws -> JobRecord {
        try await database.transaction { conn in
            guard let row = try conn.query(
                "SELECT segment_count, segments_done FROM jobs WHERE id = $1::uuid FOR UPDATE", id).first
            else { throw StoreError.notFound("no job \(id.uuidString.lowercased())") }
            let (total, done) = (try row.int("segment_count"), try row.int("segments_done"))
            guard done == total else {
                throw StoreError.invalidState("job has \(total - done) unfinished segments")
            }
            switch try conn.setJobStatus(id, to: .completed, reason: "archive assembled", expiresAt: expiresAt) {
            case .missing: throw StoreError.notFound("no job \(id.uuidString.lowercased())")
            case .notAllowed(let current): throw StoreError.invalidState("job is \(current.rawValue); cannot complete")
            case .changed: break
            }
            return try JobRecord(row: conn.query("SELECT \(JobRecord.columns) FROM jobs WHERE id = $1::uuid", id).first!)
        }
    }

    /// Fails a job from outside the lease flow (e.g. archive assembly failed).
    /// Returns nil when the job was already finished.
    public func fail(id: UUID, code: ErrorCode, message: String) async throws -> JobFailure? {
        try await database.transaction { conn in
            try conn.failJob(id, code: code, message: message, reason: "failed by coordinator")
        }
    }

    /// Moves a finished job to EXPIRED (its files are being deleted). Returns
    /// false when the job is unknown or not finished.
    @discardableResult
    public func markExpired(id: UUID) async throws -> Bool {
        try await database.transaction { conn in
            if case .changed = try conn.setJobStatus(id, to: .expired, reason: "retention period over") { return true }
            return false
        }
    }

    /// Finished jobs whose `expires_at` has passed, oldest first, for the cleanup loop.
    public func dueForExpiry(limit: Int = 100) async throws -> [UUID] {
        try await database.withConnection { conn in
            try conn.query("""
                SELECT id FROM jobs
                WHERE expires_at IS NOT NULL AND expires_at <= now() AND status = ANY($1::text[])
                ORDER BY expires_at LIMIT $2::int
                """, PostgresConnection.textArray(JobStatus.predecessors(of: .expired)), limit).rows.map { try $0.uuid("id") }
        }
    }

    /// PROCESSING jobs whose every segment is done but whose archive was never
    /// assembled (the coordinator died, or the database was down, between the
    /// last SEGMENT_DONE and COMPLETED), oldest first.
    public func awaitingAssembly(limit: Int = 100) async throws -> [UUID] {
        try await database.withConnection { conn in
            try conn.query("""
                SELECT id FROM jobs
                WHERE status = 'PROCESSING' AND segments_done = segment_count
                ORDER BY updated_at LIMIT $1::int
                """, limit).rows.map { try $0.uuid("id") }
        }
    }

    /// The status of each of `ids` that names a job; unknown ids are absent.
    public func statuses(of ids: [UUID]) async throws -> [UUID: JobStatus] {
        guard !ids.isEmpty else { return [:] }
        let list = "{" + ids.map { $0.uuidString.lowercased() }.joined(separator: ",") + "}"
        return try await database.withConnection { conn in
            var found: [UUID: JobStatus] = [:]
            for row in try conn.query("SELECT id, status FROM jobs WHERE id = ANY($1::uuid[])", list).rows {
                found[try row.uuid("id")] = try row.enum("status", as: JobStatus.self)
            }
            return found
        }
    }

    /// Sets (or clears) when a job's files may be deleted.
    public func setExpiry(id: UUID, at date: Date?) async throws {
        try await database.withConnection { conn in
            try conn.query("UPDATE jobs SET expires_at = $2::timestamptz, updated_at = now() WHERE id = $1::uuid", id, date)
        }
    }
}
