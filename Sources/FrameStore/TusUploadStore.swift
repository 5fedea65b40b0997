import FrameCore
import Foundation

/// Where a resumable upload stands.
public enum TusUploadState: String, Sendable, Codable, CaseIterable {
    /// Bytes are still expected (or all arrived but the job is not committed yet).
    case receiving
    /// The last byte landed and the job was committed; the upload's id is the job's.
    case done
    /// The finished file was not a usable video (`error_code` says why); its bytes are deleted.
    case refused
    /// Unfinished past its expiry; its bytes are deleted.
    case expired
    /// Deleted by its owner (tus termination).
    case terminated
}

/// One row of `tus_uploads`.
public struct TusUploadRecord: Sendable, Hashable {
    public var id: UUID
    public var userID: UUID
    public var filename: String
    public var ext: String
    /// The total size the client announced (`Upload-Length`).
    public var length: Int64
    /// Bytes durably stored (fsynced): the `Upload-Offset` the server reports.
    public var received: Int64
    /// The job options from the metadata, as JSON (the API's own encoding).
    public var optionsJSON: String
    /// The `Upload-Metadata` header as sent, echoed on HEAD.
    public var metadata: String
    public var state: TusUploadState
    public var errorCode: ErrorCode?
    public var errorMessage: String?
    public var createdAt: Date
    public var expiresAt: Date
    public var finishedAt: Date?
    /// The process whose local partial file holds every acknowledged byte (set only when pieces
    /// are kept in an object store; nil before the first piece).
    public var stagedBy: String?

    static let columns = """
        id, user_id, filename, ext, length, received, options::text AS options, metadata, state, error_code,
        error_message, created_at, expires_at, finished_at, staged_by
        """

    init(row: PostgresRow) throws {
        id = try row.uuid("id")
        userID = try row.uuid("user_id")
        filename = try row.string("filename")
        ext = try row.string("ext")
        length = try row.int64("length")
        received = try row.int64("received")
        optionsJSON = try row.string("options")
        metadata = try row.string("metadata")
        state = try row.enum("state")
        errorCode = try row.optionalString("error_code").flatMap(ErrorCode.init(name:))
        errorMessage = try row.optionalString("error_message")
        createdAt = try row.date("created_at")
        expiresAt = try row.date("expires_at")
        finishedAt = try row.optionalDate("finished_at")
        stagedBy = try row.optionalString("staged_by")
    }

    /// All bytes are stored (the job may still have to be committed).
    public var isComplete: Bool { received == length }
}

/// One stretch of a resumable upload's bytes kept as an object (see ``TusUploadStore/pieces(id:)``).
public struct TusUploadPiece: Sendable, Hashable {
    /// The upload's bytes this object holds.
    public var bytes: Range<Int64>
    public var key: String

    public init(bytes: Range<Int64>, key: String) {
        self.bytes = bytes
        self.key = key
    }
}

/// Resumable uploads (tus): creation under a per-user cap, the durable offset,
/// and the end states.
///
/// The offset only moves forward and only from the value the writer started
/// at (`advance(id:from:to:)` is a compare-and-set), so two writers racing on
/// one upload cannot both succeed, and a stale writer cannot move it back.
public struct TusUploadStore: Sendable {
    let database: Database

    public init(database: Database) {
        self.database = database
    }

    /// The outcome of ``create(id:userID:filename:ext:length:optionsJSON:metadata:expiresAt:maxUnfinished:)``.
    public enum Creation: Sendable {
        case created(TusUploadRecord)
        /// The user already has this many unfinished uploads.
        case capReached(Int)
    }

    /// Creates an upload unless the user already has `maxUnfinished` unfinished ones (checked
    /// under a per-user advisory lock, so concurrent creations cannot overshoot the cap).
    public func create(
        id: UUID, userID: UUID, filename: String, ext: String, length: Int64, optionsJSON: String,
        metadata: String, expiresAt: Date, maxUnfinished: Int
    ) async throws -> Creation {
        try await database.transaction { conn in
            try conn.query("SELECT pg_advisory_xact_lock(hashtext('tus:' || $1))", userID)
            let open = try conn.query("""
                SELECT count(*) AS n FROM tus_uploads
                WHERE user_id = $1::uuid AND state = 'receiving' AND expires_at > now()
                """, userID).first!.int("n")
            guard open < maxUnfinished else { return .capReached(open) }
            let row = try conn.query("""
                INSERT INTO tus_uploads (id, user_id, filename, ext, length, options, metadata, expires_at)
                VALUES ($1::uuid, $2::uuid, $3, $4, $5::bigint, $6::jsonb, $7, $8::timestamptz)
                RETURNING \(TusUploadRecord.columns)
                """, id, userID, filename, ext, length, optionsJSON, metadata, expiresAt).first!
            return .created(try TusUploadRecord(row: row))
        }
    }

    public func get(id: UUID) async throws -> TusUploadRecord? {
        try await database.withConnection { conn in
            try conn.query("SELECT \(TusUploadRecord.columns) FROM tus_uploads WHERE id = $1::uuid", id)
                .first.map(TusUploadRecord.init(row:))
        }
    }

    /// Moves the durable offset from `from` to `to` and pushes the expiry to `expiresAt`; false
    /// when the upload is no longer receiving at `from` (another writer, or it ended meanwhile).
    public func advance(id: UUID, from: Int64, to: Int64, expiresAt: Date) async throws -> Bool {
        try await database.withConnection { conn in
            try conn.query("""
                UPDATE tus_uploads SET received = $3::bigint, expires_at = $4::timestamptz, updated_at = now()
                WHERE id = $1::uuid AND state = 'receiving' AND received = $2::bigint
                """, id, from, to, expiresAt).affectedRows == 1
        }
    }

    /// ``advance(id:from:to:expiresAt:)`` for an upload whose bytes `from..<to` were also stored as
    /// the object `pieceKey`: the piece is recorded and `stagedBy` named the holder of a complete
    /// local copy, in the same transaction, only if the offset moved.
    public func advance(id: UUID, from: Int64, to: Int64, expiresAt: Date, stagedBy: String, pieceKey: String) async throws -> Bool {
        try await database.transaction { conn in
            let moved = try conn.query("""
                UPDATE tus_uploads SET received = $3::bigint, expires_at = $4::timestamptz, staged_by = $5, updated_at = now()
                WHERE id = $1::uuid AND state = 'receiving' AND received = $2::bigint
                """, id, from, to, expiresAt, stagedBy).affectedRows == 1
            guard moved else { return false }
            try conn.query("""
                INSERT INTO tus_upload_pieces (upload_id, first_byte, end_byte, key) VALUES ($1::uuid, $2::bigint, $3::bigint, $4)
                """, id, from, to, pieceKey)
            return true
        }
    }

    /// Names `stagedBy` as the holder of a complete local copy (after it rebuilt one from the
    /// pieces), if the upload is still at `received`; false otherwise.
    @discardableResult
    public func markStaged(id: UUID, received: Int64, by stagedBy: String) async throws -> Bool {
        try await database.withConnection { conn in
            try conn.query("""
                UPDATE tus_uploads SET staged_by = $3 WHERE id = $1::uuid AND received = $2::bigint
                """, id, received, stagedBy).affectedRows == 1
        }
    }

    /// The recorded pieces of an upload, in byte order.
    public func pieces(id: UUID) async throws -> [TusUploadPiece] {
        try await database.withConnection { conn in
            try conn.query("""
                SELECT first_byte, end_byte, key FROM tus_upload_pieces WHERE upload_id = $1::uuid ORDER BY first_byte
                """, id).rows.map {
                TusUploadPiece(bytes: try $0.int64("first_byte")..<(try $0.int64("end_byte")), key: try $0.string("key"))
            }
        }
    }

    /// Forgets the piece rows of an upload (once their objects are deleted).
    public func forgetPieces(id: UUID) async throws {
        try await database.withConnection { conn in
            try conn.query("DELETE FROM tus_upload_pieces WHERE upload_id = $1::uuid", id)
        }
    }

    /// Ended uploads whose pieces are still recorded: their objects are to be deleted.
    public func endedWithPieces(limit: Int = 100) async throws -> [UUID] {
        try await database.withConnection { conn in
            try conn.query("""
                SELECT DISTINCT p.upload_id FROM tus_upload_pieces p JOIN tus_uploads u ON u.id = p.upload_id
                WHERE u.state <> 'receiving' LIMIT $1::int
                """, limit).rows.map { try $0.uuid("upload_id") }
        }
    }

    /// Records the end of an upload that was still receiving; false when it had already ended.
    @discardableResult
    public func finish(id: UUID, state: TusUploadState, errorCode: ErrorCode? = nil, errorMessage: String? = nil)
        async throws -> Bool
    {
        try await database.withConnection { conn in
            try conn.query("""
                UPDATE tus_uploads SET state = $2, error_code = $3, error_message = $4, finished_at = now(),
                       updated_at = now()
                WHERE id = $1::uuid AND state = 'receiving'
                """, id, state.rawValue, errorCode?.name, errorMessage).affectedRows == 1
        }
    }

    /// Ends a finished upload's record (termination of an upload that already became a job).
    public func terminateFinished(id: UUID) async throws {
        try await database.withConnection { conn in
            try conn.query("""
                UPDATE tus_uploads SET state = 'terminated', updated_at = now()
                WHERE id = $1::uuid AND state IN ('done', 'refused')
                """, id)
        }
    }

    /// Unfinished uploads past their expiry, oldest first, for the sweeper.
    public func dueForExpiry(limit: Int = 100) async throws -> [UUID] {
        try await database.withConnection { conn in
            try conn.query("""
                SELECT id FROM tus_uploads WHERE state = 'receiving' AND expires_at <= now()
                ORDER BY expires_at LIMIT $1::int
                """, limit).rows.map { try $0.uuid("id") }
        }
    }

    /// Moves an unfinished upload past its expiry to `expired`; false when it was not due (or not receiving).
    public func expire(id: UUID) async throws -> Bool {
        try await database.withConnection { conn in
            try conn.query("""
                UPDATE tus_uploads SET state = 'expired', finished_at = now(), updated_at = now()
                WHERE id = $1::uuid AND state = 'receiving' AND expires_at <= now()
                """, id).affectedRows == 1
        }
    }

    /// Unfinished uploads of a user (the cap counts these).
    public func unfinishedCount(userID: UUID) async throws -> Int {
        try await database.withConnection { conn in
            try conn.query("""
                SELECT count(*) AS n FROM tus_uploads
                WHERE user_id = $1::uuid AND state = 'receiving' AND expires_at > now()
                """, userID).first!.int("n")
        }
    }
}
