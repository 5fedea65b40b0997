import FrameCore
import Foundation

/// One done segment's slice object and its manifest (table `segment_slices`, migration 7).
///
/// `entriesJSON` is the JSON array FrameArchive's `ZipEntry` encodes to (offsets relative to the
/// slice); FrameStore keeps it opaque, as it knows nothing of ZIP.
public struct SegmentSliceRecord: Sendable, Hashable {
    public var segment: UInt32
    public var epoch: UInt64
    /// The object's key, without the store's prefix.
    public var key: String
    public var length: Int64
    public var entriesJSON: String

    public init(segment: UInt32, epoch: UInt64, key: String, length: Int64, entriesJSON: String) {
        self.segment = segment
        self.epoch = epoch
        self.key = key
        self.length = length
        self.entriesJSON = entriesJSON
    }
}

/// A coordinator's claim on assembling one job's archive (``JobStore/claimAssembly(id:claimer:ttl:)``).
public struct AssemblyClaim: Sendable, Hashable {
    public var jobID: UUID
    public var claimer: String
    public var expiresAt: Date
    /// The multipart upload a previous claimer recorded and never finished: abort it.
    public var abandonedUploadID: String?
    /// The claimer whose expired claim this one took over, if any.
    public var tookOverFrom: String?
}

extension JobStore {
    /// Claims the assembly of job `id` for `claimer` (a coordinator's id) for `ttl`: exactly one
    /// coordinator assembles a job at a time, on either archive path (ZIP from the local spool,
    /// or from segment slices in the object store). This is the only assembly claim.
    ///
    /// Succeeds when the job is PROCESSING with every segment done and its claim is free: nobody
    /// holds it, `claimer` itself does (a retry, which renews it), or the holder stopped — its
    /// claim's TTL lapsed (not renewed: it died or hung) or its coordinator liveness row
    /// (`coordinators`, migration 8) expired. Returns nil otherwise. A takeover writes an
    /// `assembly_claimed` event naming the previous claimer and returns its recorded multipart
    /// upload for the new claimer to abort.
    ///
    /// A dead coordinator's row is deleted by ``CoordinatorStore/takeOverExpired(by:limit:)``,
    /// which lapses its claims in the same transaction, so the rule holds after the row is gone.
    public func claimAssembly(id: UUID, claimer: String, ttl: Duration) async throws -> AssemblyClaim? {
        try await database.transaction { conn in
            try Self.claim(conn, condition: "j.id = $3::uuid", extra: [id.uuidString.lowercased()], claimer: claimer, ttl: ttl, limit: 1)
                .first
        }
    }

    /// Claims up to `limit` jobs awaiting assembly (every segment done, still PROCESSING, claim
    /// free or expired), oldest first, skipping rows another claimer is claiming right now. The
    /// periodic sweep of every coordinator calls this: each job goes to one of them.
    public func claimAssemblies(claimer: String, ttl: Duration, limit: Int = 10) async throws -> [AssemblyClaim] {
        try await database.transaction { conn in
            try Self.claim(conn, condition: "TRUE", extra: [], claimer: claimer, ttl: ttl, limit: limit)
        }
    }

    static func claim(
        _ conn: PostgresConnection, condition: String, extra: [String], claimer: String, ttl: Duration, limit: Int
    ) throws -> [AssemblyClaim] {
        let params: [(any PostgresParameter)?] = [claimer, ttl.seconds] + extra.map { $0 } + [limit]
        let rows = try conn.query("""
            WITH candidates AS (
                SELECT j.id, j.assembly_claimed_by AS previous FROM jobs j
                WHERE \(condition) AND j.status = 'PROCESSING' AND j.segments_done = j.segment_count
                  AND (j.assembly_claimed_by IS NULL OR j.assembly_claimed_by = $1 OR j.assembly_claim_expires_at < now()
                       OR EXISTS (SELECT 1 FROM coordinators c WHERE c.id = j.assembly_claimed_by AND c.expires_at < now()))
                ORDER BY j.updated_at, j.id
                LIMIT $\(params.count)::int
                FOR UPDATE SKIP LOCKED
            )
            UPDATE jobs j SET assembly_claimed_by = $1,
                assembly_claim_expires_at = now() + make_interval(secs => $2::float8)
            FROM candidates c WHERE j.id = c.id
            RETURNING j.id, j.assembly_claim_expires_at, j.assembly_upload_id, c.previous
            """, params).rows
        var claims: [AssemblyClaim] = []
        for row in rows {
            let previous = try row.optionalString("previous")
            let claim = AssemblyClaim(
                jobID: try row.uuid("id"), claimer: claimer, expiresAt: try row.date("assembly_claim_expires_at"),
                abandonedUploadID: previous == claimer ? nil : try row.optionalString("assembly_upload_id"),
                tookOverFrom: previous == claimer ? nil : previous)
            if previous != claimer {
                try conn.recordEvent(
                    job: claim.jobID, kind: .assemblyClaimed, node: claimer, reason: "archive assembly",
                    detail: previous.map { "took over the lapsed claim of \($0)" } ?? "first claim")
            }
            claims.append(claim)
        }
        return claims
    }

    /// Extends `claimer`'s claim by `ttl` and records its multipart upload (nil keeps the recorded
    /// one). False when the claim is no longer `claimer`'s: it must stop and abort its upload.
    public func renewAssemblyClaim(id: UUID, claimer: String, ttl: Duration, uploadID: String? = nil) async throws -> Bool {
        try await database.withConnection { conn in
            try conn.query("""
                UPDATE jobs SET assembly_claim_expires_at = now() + make_interval(secs => $3::float8),
                    assembly_upload_id = coalesce($4, assembly_upload_id)
                WHERE id = $1::uuid AND assembly_claimed_by = $2 AND status = 'PROCESSING'
                """, id, claimer, ttl.seconds, uploadID).affectedRows == 1
        }
    }

    /// Gives the claim up (an assembly postponed by an outage), so any coordinator may retry it at once.
    public func releaseAssemblyClaim(id: UUID, claimer: String) async throws {
        try await database.withConnection { conn in
            try conn.query("""
                UPDATE jobs SET assembly_claimed_by = NULL, assembly_claim_expires_at = NULL, assembly_upload_id = NULL
                WHERE id = $1::uuid AND assembly_claimed_by = $2
                """, id, claimer)
        }
    }

    /// Marks the job COMPLETED (like ``markCompleted(id:expiresAt:)``) if `claimer` still holds its
    /// assembly claim, and clears the claim. Throws `invalidState` when the claim was taken over.
    public func completeAssembly(id: UUID, claimer: String, expiresAt: Date?) async throws -> JobRecord {
        try await database.transaction { conn in
            guard let row = try conn.query(
                "SELECT segment_count, segments_done, assembly_claimed_by FROM jobs WHERE id = $1::uuid FOR UPDATE", id).first
            else { throw StoreError.notFound("no job \(id.uuidString.lowercased())") }
            guard try row.optionalString("assembly_claimed_by") == claimer else {
                throw StoreError.invalidState("the assembly claim of job \(id.uuidString.lowercased()) is no longer \(claimer)'s")
            }
            let (total, done) = (try row.int("segment_count"), try row.int("segments_done"))
            guard done == total else { throw StoreError.invalidState("job has \(total - done) unfinished segments") }
            switch try conn.setJobStatus(id, to: .completed, reason: "archive assembled", node: claimer, expiresAt: expiresAt) {
            case .missing: throw StoreError.notFound("no job \(id.uuidString.lowercased())")
            case .notAllowed(let current): throw StoreError.invalidState("job is \(current.rawValue); cannot complete")
            case .changed: break
            }
            try conn.query("""
                UPDATE jobs SET assembly_claimed_by = NULL, assembly_claim_expires_at = NULL, assembly_upload_id = NULL
                WHERE id = $1::uuid
                """, id)
            return try JobRecord(row: conn.query("SELECT \(JobRecord.columns) FROM jobs WHERE id = $1::uuid", id).first!)
        }
    }

    /// The slices of a job's done segments, in segment order.
    public func segmentSlices(jobID: UUID) async throws -> [SegmentSliceRecord] {
        try await database.withConnection { conn in
            try conn.query("""
                SELECT idx, epoch, object_key, length, entries::text AS entries FROM segment_slices
                WHERE job_id = $1::uuid ORDER BY idx
                """, jobID).rows.map { row in
                SegmentSliceRecord(
                    segment: UInt32(try row.int("idx")), epoch: UInt64(try row.int64("epoch")),
                    key: try row.string("object_key"), length: try row.int64("length"), entriesJSON: try row.string("entries"))
            }
        }
    }
}
