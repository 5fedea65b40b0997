import FrameCore
import Foundation

/// A user's role: admins may see every job and manage nodes.
public enum UserRole: String, Sendable, Codable, CaseIterable {
    case user, admin
}

/// One row of `users`. The e-mail address is stored trimmed and lower-cased,
/// which is what makes the unique constraint case-insensitive.
public struct UserRecord: Sendable, Codable, Hashable {
    public var id: UUID
    public var email: String
    public var passwordHash: String
    public var name: String
    public var role: UserRole
    public var createdAt: Date

    init(row: PostgresRow) throws {
        id = try row.uuid("id")
        email = try row.string("email")
        passwordHash = try row.string("password_hash")
        name = try row.string("name")
        role = try row.enum("role")
        createdAt = try row.date("created_at")
    }
}

/// Everything needed to create a job: the upload's facts, the requested
/// output and the planned segments (from FrameMedia's planner).
///
/// The job and all its segments are written in one transaction, so a job is
/// never visible to the scheduler half-planned.
public struct NewJob: Sendable {
    public var id: UUID
    public var userID: UUID
    public var originalFilename: String
    /// Lower-case file extension of the upload, without the dot.
    public var ext: String
    public var sizeBytes: Int64
    public var fps: Rational
    public var output: OutputOptions
    public var durationSeconds: Double?
    /// Labels a node must carry (all of them, with these values) to be leased this job's segments.
    public var labelRequirement: [String: String]
    /// How many decode attempts a segment gets (SEGMENT_FAILED counts one) before the job fails
    /// with `ATTEMPTS_EXHAUSTED`; node deaths are not counted here but in `maxNodeLosses`.
    public var maxAttempts: Int
    /// How many times a segment's node may die holding it (connection lost, heartbeats stopped,
    /// lease expired) before the job fails with `NODES_LOST`: a poison segment must not crash the fleet.
    public var maxNodeLosses: Int
    public var expiresAt: Date?
    /// The probe result as a JSON document, kept for the job's detail view; opaque to the store.
    public var probeJSON: String?
    /// The planned segments; `segments[i].index` must be `i`.
    public var segments: [SegmentSpec]

    public init(
        id: UUID = UUID(), userID: UUID, originalFilename: String, ext: String, sizeBytes: Int64,
        fps: Rational, output: OutputOptions, durationSeconds: Double? = nil,
        labelRequirement: [String: String] = [:], maxAttempts: Int = 3, maxNodeLosses: Int = 5, expiresAt: Date? = nil,
        probeJSON: String? = nil, segments: [SegmentSpec]
    ) {
        self.maxNodeLosses = maxNodeLosses
        self.id = id
        self.userID = userID
        self.originalFilename = originalFilename
        self.ext = ext
        self.sizeBytes = sizeBytes
        self.fps = fps
        self.output = output
        self.durationSeconds = durationSeconds
        self.labelRequirement = labelRequirement
        self.maxAttempts = maxAttempts
        self.expiresAt = expiresAt
        self.probeJSON = probeJSON
        self.segments = segments
    }
}

/// One row of `jobs`, with progress counters maintained by the lease store.
public struct JobRecord: Sendable, Codable, Hashable {
    public var id: UUID
    public var userID: UUID
    public var originalFilename: String
    public var ext: String
    public var sizeBytes: Int64
    public var status: JobStatus
    public var fps: Rational
    public var output: OutputOptions
    public var durationSeconds: Double?
    /// Total number of frames (samples) the job will produce.
    public var frameCount: Int64
    /// Frames of segments completed so far.
    public var framesDone: Int64
    public var segmentCount: Int
    public var segmentsDone: Int
    public var maxAttempts: Int
    public var errorCode: ErrorCode?
    public var errorMessage: String?
    public var labelRequirement: [String: String]
    public var probeJSON: String?
    public var createdAt: Date
    public var updatedAt: Date
    public var completedAt: Date?
    public var expiresAt: Date?

    /// Fraction of frames done, 0...1 (1 for a job with no frames once all segments are done).
    public var progress: Double {
        if frameCount > 0 { return Double(framesDone) / Double(frameCount) }
        return segmentCount > 0 ? Double(segmentsDone) / Double(segmentCount) : 0
    }

    static let columns = """
        id, user_id, original_filename, ext, size_bytes, status, fps_num, fps_den, format, quality,
        max_width, max_height, duration_seconds, frame_count, frames_done, segment_count, segments_done,
        max_attempts, error_code, error_message, label_requirement, probe, created_at, updated_at,
        completed_at, expires_at
        """

    init(row: PostgresRow) throws {
        id = try row.uuid("id")
        userID = try row.uuid("user_id")
        originalFilename = try row.string("original_filename")
        ext = try row.string("ext")
        sizeBytes = try row.int64("size_bytes")
        status = try row.enum("status")
        fps = Rational(Int32(try row.int("fps_num")), Int32(try row.int("fps_den")))
        let formatName = try row.string("format")
        guard let format = ImageFormat(name: formatName) else {
            throw StoreError.decoding("column format: unknown image format \(formatName)")
        }
        output = OutputOptions(
            format: format, quality: UInt8(clamping: try row.int("quality")),
            maxWidth: UInt32(clamping: try row.int("max_width")), maxHeight: UInt32(clamping: try row.int("max_height")))
        durationSeconds = try row.optionalDouble("duration_seconds")
        frameCount = try row.int64("frame_count")
        framesDone = try row.int64("frames_done")
        segmentCount = try row.int("segment_count")
        segmentsDone = try row.int("segments_done")
        maxAttempts = try row.int("max_attempts")
        errorCode = try row.optionalString("error_code").flatMap(ErrorCode.init(name:))
        errorMessage = try row.optionalString("error_message")
        labelRequirement = try row.json("label_requirement")
        probeJSON = try row.optionalString("probe")
        createdAt = try row.date("created_at")
        updatedAt = try row.date("updated_at")
        completedAt = try row.optionalDate("completed_at")
        expiresAt = try row.optionalDate("expires_at")
    }
}

extension ImageFormat {
    /// The name stored in `jobs.format`.
    var storeName: String { self == .png ? "png" : "jpeg" }
}

/// One row of `segments`: the plan plus the current lease, if any.
public struct SegmentRecord: Sendable, Codable, Hashable {
    public var jobID: UUID
    public var index: UInt32
    public var spec: SegmentSpec
    public var sampleCount: Int
    public var state: SegmentState
    /// The node holding the lease (leased), that finished it (done) or failed it.
    public var node: String?
    public var epoch: UInt64
    public var leaseExpiresAt: Date?
    /// Decode attempts: grants minus the ones lost with their node (SEGMENT_FAILED keeps its charge).
    public var attempts: Int
    /// Times the node holding this segment died (connection lost, heartbeats stopped, lease expired).
    public var nodeLosses: Int
    /// Nodes that reported SEGMENT_FAILED for this segment (leased again only when no other node is eligible).
    public var failedNodes: [String]
    public var lastErrorCode: ErrorCode?
    public var lastErrorMessage: String?
    public var notBefore: Date
    public var doneAt: Date?

    static let columns = """
        job_id, idx, spec, sample_count, state, node, epoch, lease_expires_at, attempts,
        last_error_code, last_error_message, not_before, done_at, node_losses,
        array_to_string(failed_nodes, chr(10)) AS failed_nodes
        """

    init(row: PostgresRow) throws {
        jobID = try row.uuid("job_id")
        index = UInt32(try row.int("idx"))
        spec = try row.json("spec")
        sampleCount = try row.int("sample_count")
        state = try row.enum("state")
        node = try row.optionalString("node")
        epoch = UInt64(try row.int64("epoch"))
        leaseExpiresAt = try row.optionalDate("lease_expires_at")
        attempts = try row.int("attempts")
        nodeLosses = try row.int("node_losses")
        failedNodes = try row.string("failed_nodes").split(separator: "\n").map(String.init)
        lastErrorCode = try row.optionalString("last_error_code").flatMap(ErrorCode.init(name:))
        lastErrorMessage = try row.optionalString("last_error_message")
        notBefore = try row.date("not_before")
        doneAt = try row.optionalDate("done_at")
    }
}

/// What a `job_events` row records; the audit trail of a job's leases and statuses.
public enum JobEventKind: String, Sendable, Codable, CaseIterable {
    /// The job and its segments were created.
    case created
    /// The job's status changed; `detail` is `FROM->TO`.
    case status
    /// A segment was leased to `node` under `epoch`.
    case leaseGranted = "lease_granted"
    /// A node's lease was taken back (node lost, drained, coordinator restart); `reason` says why.
    case leaseRequeued = "lease_requeued"
    /// The reaper found the lease past `lease_expires_at`.
    case leaseExpired = "lease_expired"
    /// A live lease was cancelled because its job was cancelled or failed.
    case leaseCancelled = "lease_cancelled"
    /// A result arrived under a stale epoch (or for a lease the node no longer holds) and was refused.
    case fenced
    /// A segment's frames were all received.
    case segmentDone = "segment_done"
    /// A segment failed with a retryable error and will be leased again.
    case segmentRetry = "segment_retry"
    /// A segment failed for good.
    case segmentFailed = "segment_failed"
    /// A node that reconnected after a network blip kept its lease (same epoch) instead of redoing it.
    case leaseResumed = "lease_resumed"
    /// `node` failed too many of this job's segments and gets none of them any more.
    case nodeBlocklisted = "node_blocklisted"
    /// `node` reported a non-retryable failure (`reason` is the code); the segment goes to a
    /// second node to confirm it before the job fails.
    case verdictUnconfirmed = "verdict_unconfirmed"
    /// Another node finished a segment that `node` had declared undecodable (non-retryable).
    case verdictContradicted = "verdict_contradicted"
    /// `node` (here: a coordinator) claimed the job's archive assembly; `detail` names a claim it took over.
    case assemblyClaimed = "assembly_claimed"
}

/// One row of `job_events`.
public struct JobEvent: Sendable, Codable, Hashable {
    public var id: Int64
    public var jobID: UUID
    public var at: Date
    public var kind: JobEventKind
    public var segment: UInt32?
    public var node: String?
    public var epoch: UInt64?
    public var reason: String?
    public var detail: String?

    init(row: PostgresRow) throws {
        id = try row.int64("id")
        jobID = try row.uuid("job_id")
        at = try row.date("at")
        kind = try row.enum("kind")
        segment = try row.optionalInt("segment").map { UInt32($0) }
        node = try row.optionalString("node")
        epoch = try row.optionalInt64("epoch").map { UInt64($0) }
        reason = try row.optionalString("reason")
        detail = try row.optionalString("detail")
    }
}

/// A lease as someone holds it: the fencing reference and the node.
public struct HeldLease: Sendable, Codable, Hashable {
    public var ref: LeaseRef
    public var node: String

    public init(ref: LeaseRef, node: String) {
        self.ref = ref
        self.node = node
    }
}

/// A job that just moved to FAILED, with the leases other nodes still held on
/// it (now cancelled in the store; the caller sends them CANCEL).
public struct JobFailure: Sendable, Hashable {
    public var jobID: UUID
    public var code: ErrorCode
    public var message: String
    public var cancelledLeases: [HeldLease]
}

/// The result of cancelling a job.
public struct CancelOutcome: Sendable, Hashable {
    public var previousStatus: JobStatus
    public var job: JobRecord
    /// Leases that were live: the caller sends each node a CANCEL.
    public var cancelledLeases: [HeldLease]
}

/// Progress of a job after a segment completed.
public struct JobProgress: Sendable, Hashable {
    public var jobID: UUID
    public var framesDone: Int64
    public var frameCount: Int64
    public var segmentsDone: Int
    public var segmentCount: Int
    /// The node whose non-retryable verdict on this segment the completion just contradicted, if any.
    public var contradicted: String? = nil

    /// Every segment is done: the caller can assemble the archive and mark the job completed.
    public var allSegmentsDone: Bool { segmentsDone >= segmentCount }
}
