import FrameCore

/// How long a lease may go without progress (no READ, FRAME or
/// SEGMENT_DONE) before the coordinator takes it back although heartbeats
/// still renew it: `max(floor, factor x the segment's media duration)`
/// (proto-spec/leases.md, "Progress deadline"; `coordinator.progress_timeout`
/// and `coordinator.progress_factor` in cluster.yaml).
///
/// Heartbeats prove the node process is alive, not that the lease moves: a
/// wedged decoder, or a hostile node, would otherwise keep a segment, and
/// its job, for ever.
public struct ProgressDeadline: Sendable, Equatable {
    public var floor: Duration
    public var factor: Double

    public init(floor: Duration = .seconds(60), factor: Double = 2) {
        self.floor = floor
        self.factor = factor
    }

    /// The deadline for a segment: its media span (from where decoding starts
    /// to the next segment; for the last segment, its samples' span) times
    /// `factor`, and never less than `floor`.
    public func limit(for spec: SegmentSpec) -> Duration {
        let seconds = Self.mediaSeconds(spec)
        guard seconds.isFinite, seconds > 0, factor > 0 else { return floor }
        // Clamp before converting: a huge span must not overflow Duration.
        let scaled = min(seconds * factor, 86_400 * 365)
        return max(floor, .milliseconds(Int64(scaled * 1000)))
    }

    static func mediaSeconds(_ spec: SegmentSpec) -> Double {
        let tb = spec.timeBase.doubleValue
        if spec.endPTS != Int64.max, spec.endPTS > spec.decodeStartPTS, tb > 0 {
            // Doubles: the subtraction of two wide i64 values must not trap.
            return (Double(spec.endPTS) - Double(spec.decodeStartPTS)) * tb
        }
        let rate = spec.rate.doubleValue
        return rate > 0 ? Double(spec.sampleCount) / rate : 0
    }
}

/// When each lease last made progress, and which are past their
/// ``ProgressDeadline``: the decision, apart from the scheduler's effects,
/// on any clock (the scheduler uses `ContinuousClock`, tests a hand-driven one).
public struct ProgressWatch<Instant: InstantProtocol & Sendable>: Sendable where Instant.Duration == Duration {
    struct Entry: Sendable {
        var last: Instant
        var limit: Duration
    }

    public let rule: ProgressDeadline
    private var leases: [LeaseRef: Entry] = [:]

    public init(rule: ProgressDeadline) {
        self.rule = rule
    }

    /// A lease was granted (or resumed) at `now`: its deadline starts.
    public mutating func start(_ ref: LeaseRef, spec: SegmentSpec, at now: Instant) {
        leases[ref] = Entry(last: now, limit: rule.limit(for: spec))
    }

    /// A READ, FRAME or SEGMENT_DONE for `ref` was accepted at `now`.
    public mutating func progressed(_ ref: LeaseRef, at now: Instant) {
        leases[ref]?.last = now
    }

    /// The lease ended (done, failed, cancelled, taken back).
    public mutating func stop(_ ref: LeaseRef) {
        leases[ref] = nil
    }

    /// Leases whose last progress is more than their limit before `now`, oldest first.
    public func overdue(at now: Instant) -> [LeaseRef] {
        leases.filter { $0.value.last.advanced(by: $0.value.limit) < now }
            .sorted { $0.value.last < $1.value.last }
            .map(\.key)
    }

    public var count: Int { leases.count }
}
