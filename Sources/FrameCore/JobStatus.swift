/// The lifecycle of a job, with every allowed transition listed in one place.
///
/// The store refuses any status change this table does not allow (it builds
/// its SQL `WHERE status IN (...)` guards from it), so a late message cannot
/// resurrect a cancelled job or complete a failed one. Raw values are the
/// upper-case names used in the database and the HTTP API.
///
/// ```
/// QUEUED -> PROCESSING -> COMPLETED -> EXPIRED
///    |          |
///    +----------+-> FAILED    -> EXPIRED
///    +----------+-> CANCELLED -> EXPIRED
/// ```
public enum JobStatus: String, Sendable, Hashable, Codable, CaseIterable, CustomStringConvertible {
    /// Accepted and planned; no segment has been leased yet.
    case queued = "QUEUED"
    /// At least one segment has been leased; frames are being produced or assembled.
    case processing = "PROCESSING"
    /// Every segment is done and the archive has been assembled.
    case completed = "COMPLETED"
    /// A segment failed for good (non-retryable error or attempts exhausted) or assembly failed.
    case failed = "FAILED"
    /// The user (or an admin) cancelled the job.
    case cancelled = "CANCELLED"
    /// The retention period is over and the job's files have been (or are being) deleted.
    case expired = "EXPIRED"

    /// The statuses this status may move to.
    public var successors: Set<JobStatus> {
        switch self {
        case .queued: [.processing, .failed, .cancelled]
        case .processing: [.completed, .failed, .cancelled]
        case .completed, .failed, .cancelled: [.expired]
        case .expired: []
        }
    }

    /// Whether `self -> next` is an allowed transition. Staying put is not a transition.
    public func canTransition(to next: JobStatus) -> Bool { successors.contains(next) }

    /// The statuses from which `target` may be entered; the store's SQL guards use this.
    public static func predecessors(of target: JobStatus) -> [JobStatus] {
        allCases.filter { $0.canTransition(to: target) }
    }

    /// Checks a transition, throwing `INVALID_JOB_STATE` when the table forbids it.
    public func transition(to next: JobStatus) throws(FrameFlowError) -> JobStatus {
        guard canTransition(to: next) else {
            throw FrameFlowError(.invalidJobState, "job cannot go from \(rawValue) to \(next.rawValue)")
        }
        return next
    }

    /// Whether work on the job is over (its segments will never be leased again).
    public var isFinished: Bool {
        switch self {
        case .queued, .processing: false
        case .completed, .failed, .cancelled, .expired: true
        }
    }

    /// Whether the scheduler may lease this job's segments.
    public var isSchedulable: Bool { self == .queued || self == .processing }

    public var description: String { rawValue }
}
