/// The lifecycle of one segment of a job, with its transitions in one place.
///
/// A segment is the unit of leasing. The store derives its SQL guards from
/// this table, so for instance only a `leased` segment can become `done`, and
/// a `done` segment is never handed out again. Raw values are the lower-case
/// names stored in the database.
///
/// ```
/// pending -> leased -> done
///    ^         |  \
///    +---------+   +-> failed      (requeue / expiry / retryable failure go back to pending)
/// pending, leased -> cancelled     (job cancelled or failed)
/// ```
public enum SegmentState: String, Sendable, Hashable, Codable, CaseIterable, CustomStringConvertible {
    /// Waiting for a node (possibly not before a retry back-off time).
    case pending
    /// Granted to one node under the current epoch until the lease expires.
    case leased
    /// All of its frames were received under the current epoch.
    case done
    /// Failed for good: a non-retryable error or its last attempt; the job fails with it.
    case failed
    /// Its job was cancelled or failed before it finished.
    case cancelled

    /// The states this state may move to.
    public var successors: Set<SegmentState> {
        switch self {
        case .pending: [.leased, .cancelled]
        case .leased: [.pending, .done, .failed, .cancelled]
        case .done, .failed, .cancelled: []
        }
    }

    /// Whether `self -> next` is an allowed transition.
    public func canTransition(to next: SegmentState) -> Bool { successors.contains(next) }

    /// The states from which `target` may be entered; the store's SQL guards use this.
    public static func predecessors(of target: SegmentState) -> [SegmentState] {
        allCases.filter { $0.canTransition(to: target) }
    }

    /// Whether the segment will never change again.
    public var isTerminal: Bool { successors.isEmpty }

    public var description: String { rawValue }
}
