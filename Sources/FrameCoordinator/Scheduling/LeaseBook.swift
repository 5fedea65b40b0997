import FrameCore
import FrameWire
import Foundation

/// The scheduler's bookkeeping as a value: which nodes are connected (and on
/// which session), their slots (``SlotLedger``), the leases they hold with
/// the frames received so far, leases held for a dropped node during its
/// resume grace, frames kept from requeued leases, progress deadlines and
/// the heartbeats waiting to renew leases.
///
/// Every method takes an event (a node joined, became ready or left, a
/// frame, a result, a tick) and returns the decision: what the driver,
/// ``LeaseScheduler``, must do (claim for a node, spool a frame, record a
/// result, refuse a stale message, start a grace timer, take leases back).
/// It performs no I/O and reads no clock: instants come in with the events,
/// so it is tested alone with plain values and a test clock
/// (LeaseBookTests).
struct LeaseBook<Instant: InstantProtocol & Sendable>: Sendable where Instant.Duration == Duration {
    struct Key: Hashable, Sendable {
        var job: UUID
        var segment: UInt32
        init(job: UUID, segment: UInt32) { self.job = job; self.segment = segment }
        init(_ ref: LeaseRef) { self.init(job: ref.jobID, segment: ref.segment) }
    }

    /// A lease held by a node, with what its FRAMEs must be and the frames received so far.
    struct Held: Sendable, Equatable {
        var ref: LeaseRef
        var node: String
        var spec: SegmentSpec
        var format: ImageFormat
        var source: URL
        /// The source's size as the LEASE announced it: READs are checked against it.
        var sourceSize: Int64
        var expectation: FrameExpectation
        var timestamps: [UInt32: Double] = [:]
        /// Resumed after a reconnect: frames lost in the blip are not the node's fault.
        var resumed = false
    }

    struct NodeState: Sendable, Equatable {
        var session: UInt64
        var draining = false
        /// WELCOME has been written: messages may go to the node from now on.
        var ready = false
    }

    /// What to do about a session that ended.
    enum Leaving: Sendable, Equatable {
        /// An older session of a node that has reconnected: nothing.
        case ignore
        /// The connection dropped: hold the leases, start a timer of `grace`, then ``graceEnded(name:session:)``.
        case holdForGrace(Duration)
        /// Take the leases back now (``takeBack(_:)``) and requeue them in the store.
        case takeBack
    }

    /// What to do with a FRAME.
    enum FrameDecision: Sendable, Equatable {
        /// Not a lease this node holds: refuse it as stale.
        case stale
        /// A sample outside the segment (FRAME_COUNT_MISMATCH, not fatal).
        case outsideSegment
        /// The image is not what the lease asks for: take the lease back (INVALID_FRAME).
        case invalid(String)
        /// Spool it under this format's name, then call ``frameSpooled(_:at:)``.
        case spool(ImageFormat)
    }

    /// What to do with a SEGMENT_DONE.
    enum DoneDecision: Sendable, Equatable {
        case stale
        /// A resumed lease lost frames in the blip: give it back uncharged.
        case lostInBlip
        /// The count is wrong: fail the segment on this node (FRAME_COUNT_MISMATCH).
        case mismatch(String)
        /// Complete: write these timestamps, then record the result in the store.
        case record([UInt32: Double])
    }

    /// A lease past its progress deadline.
    struct Stalled: Sendable, Equatable {
        var ref: LeaseRef
        var node: String
        var limit: Duration
    }

    private(set) var nodes: [String: NodeState] = [:]
    private(set) var active: [Key: Held] = [:]
    private var ledger = SlotLedger()
    private var progress: ProgressWatch<Instant>
    /// Nodes whose connection dropped, by name: the session that ended, while its grace runs.
    private(set) var detached: [String: UInt64] = [:]
    /// Frames received under leases that were requeued, kept until the segment is granted
    /// again, so the node that lost it can still resume it without resending them.
    private(set) var released: [Key: Held] = [:]
    /// Nodes that sent a heartbeat since the last renewal flush.
    private var renewals: Set<String> = []
    let resumeGrace: Duration

    init(progressDeadline: ProgressDeadline, resumeGrace: Duration) {
        self.progress = ProgressWatch(rule: progressDeadline)
        self.resumeGrace = resumeGrace
    }

    var progressRule: ProgressDeadline { progress.rule }

    // MARK: nodes

    /// A node's HELLO was accepted on `session`: known, not yet eligible. Ends any grace it was in.
    mutating func join(_ name: String, session: UInt64, slots: Int) {
        nodes[name] = NodeState(session: session)
        ledger.join(name, session: session, slots: slots)
        detached[name] = nil
    }

    /// The leases the node holds that the store did not let it resume: dropped from the books.
    /// Returns them, so the caller knows what was forgotten.
    @discardableResult
    mutating func forgetUnresumed(of name: String, keeping kept: Set<LeaseRef>) -> [LeaseRef] {
        var gone: [LeaseRef] = []
        for (key, lease) in active where lease.node == name && !kept.contains(lease.ref) {
            drop(key)
            gone.append(lease.ref)
        }
        return gone
    }

    /// One lease the store let the node resume. Nil when the node's slots are
    /// full: the caller gives the lease back. Otherwise the lease is held again,
    /// with the frames received before the drop (`fresh` when none were kept).
    mutating func resume(_ fresh: Held, session: UInt64, at now: Instant) -> Held? {
        let key = Key(fresh.ref)
        guard ledger.holdResumed(fresh.ref, on: fresh.node, session: session) else { return nil }
        let earlier = active[key].flatMap { $0.ref == fresh.ref ? $0 : nil }
            ?? released.removeValue(forKey: key).flatMap { $0.ref == fresh.ref ? $0 : nil }
        var lease = earlier ?? fresh
        lease.node = fresh.node
        lease.resumed = true
        active[key] = lease
        progress.start(fresh.ref, spec: fresh.spec, at: now)
        return lease
    }

    /// WELCOME is out on `session`: true when the node may now be offered work.
    mutating func ready(_ name: String, session: UInt64) -> Bool {
        guard nodes[name]?.session == session else { return false }
        nodes[name]?.ready = true
        ledger.makeEligible(name, session: session)
        return true
    }

    func isReady(_ name: String) -> Bool { nodes[name]?.ready ?? false }

    func session(of name: String) -> UInt64? { nodes[name]?.session }

    /// Nodes that may be offered work, in name order.
    var readyNodes: [String] { nodes.filter { $0.value.ready && !$0.value.draining }.keys.sorted() }

    mutating func drain(_ name: String) {
        nodes[name]?.draining = true
        ledger.makeIneligible(name)
    }

    /// `session` of `name` ended. A connection that merely dropped keeps its
    /// leases for the resume grace; anything else loses them now.
    mutating func leave(_ name: String, session: UInt64, mayResume: Bool) -> Leaving {
        guard nodes[name]?.session == session else { return .ignore }
        nodes[name] = nil
        ledger.leave(name, session: session)
        renewals.remove(name)
        if mayResume && resumeGrace > .zero && active.values.contains(where: { $0.node == name }) {
            detached[name] = session
            return .holdForGrace(resumeGrace)
        }
        return .takeBack
    }

    /// The grace timer of `session` ran out: true when the node did not come back (take its leases back).
    mutating func graceEnded(_ name: String, session: UInt64) -> Bool {
        guard detached[name] == session else { return false }
        detached[name] = nil
        return true
    }

    /// Every lease of `name` leaves the books; their frames are kept in `released`.
    @discardableResult
    mutating func takeBack(_ name: String) -> [LeaseRef] {
        var refs: [LeaseRef] = []
        for (key, lease) in active where lease.node == name {
            drop(key)
            released[key] = lease
            refs.append(lease.ref)
        }
        return refs.sorted { ($0.jobID.uuidString, $0.segment) < ($1.jobID.uuidString, $1.segment) }
    }

    // MARK: claims

    /// Slots to claim for `name` now; nil when it is not ready, draining or full.
    mutating func reserve(_ name: String) -> SlotLedger.Reservation? {
        guard let node = nodes[name], node.ready, !node.draining else { return nil }
        return ledger.reserve(name)
    }

    /// A claimed lease: held when the reservation's session is still the node's,
    /// else false (the caller gives the grant back, uncharged).
    mutating func granted(_ lease: Held, with reservation: inout SlotLedger.Reservation, at now: Instant) -> Bool {
        guard nodes[lease.node]?.session == reservation.session, ledger.hold(lease.ref, with: &reservation) else {
            return false
        }
        let key = Key(lease.ref)
        released[key] = nil
        active[key] = lease
        progress.start(lease.ref, spec: lease.spec, at: now)
        return true
    }

    mutating func finish(_ reservation: inout SlotLedger.Reservation) { ledger.finish(&reservation) }

    func free(_ name: String) -> Int { ledger.free(name) }

    func held(by name: String) -> Set<LeaseRef> { ledger.held(by: name) }

    // MARK: traffic

    /// The lease `ref` when `node` holds it now (the fence: epoch and node).
    func current(_ ref: LeaseRef, node: String) -> Held? {
        guard let lease = active[Key(ref)], lease.ref == ref, lease.node == node else { return nil }
        return lease
    }

    /// A READ, FRAME or SEGMENT_DONE for `ref` was accepted at `now`.
    mutating func progressed(_ ref: LeaseRef, at now: Instant) { progress.progressed(ref, at: now) }

    func frame(_ frame: Frame, node: String) -> FrameDecision {
        guard let lease = current(frame.lease, node: node) else { return .stale }
        let spec = lease.spec
        // Widened: firstSample + sampleCount must not trap on a plan near UInt32.max.
        guard frame.sampleIndex >= spec.firstSample,
              UInt64(frame.sampleIndex) < UInt64(spec.firstSample) + UInt64(spec.sampleCount) else {
            return .outsideSegment
        }
        if case .invalid(let why) = FrameCheck.check(frame, against: lease.expectation) { return .invalid(why) }
        return .spool(lease.format)
    }

    /// A FRAME is on disk: counted when its lease is still held (the write may
    /// have outlasted the lease); false when it is not.
    mutating func frameSpooled(_ frame: Frame, node: String, at now: Instant) -> Bool {
        let key = Key(frame.lease)
        guard current(frame.lease, node: node) != nil else { return false }
        active[key]?.timestamps[frame.sampleIndex] = frame.seconds
        progress.progressed(frame.lease, at: now)
        return true
    }

    /// A SEGMENT_DONE: unless stale, the lease leaves the books whatever the verdict.
    mutating func done(_ done: SegmentDone, node: String) -> DoneDecision {
        guard let lease = current(done.lease, node: node) else { return .stale }
        drop(Key(done.lease))
        let expected = lease.spec.sampleCount
        guard done.frameCount == expected, lease.timestamps.count == Int(expected) else {
            // Frames in flight when the connection dropped were lost with it: not the node's fault.
            if lease.resumed && done.frameCount == expected { return .lostInBlip }
            return .mismatch(
                "segment reported \(done.frameCount) frames and sent \(lease.timestamps.count); the plan has \(expected)")
        }
        return .record(lease.timestamps)
    }

    /// A SEGMENT_FAILED or a refusal: true when `ref` was held by `node` (now dropped).
    mutating func end(_ ref: LeaseRef, node: String) -> Bool {
        guard current(ref, node: node) != nil else { return false }
        drop(Key(ref))
        return true
    }

    /// A lease ended by the store (cancel, job failure, expiry): dropped; with
    /// `keepFrames` its frames are kept for a resume. Returns the lease when it was held.
    @discardableResult
    mutating func ended(_ ref: LeaseRef, keepFrames: Bool = false) -> Held? {
        let key = Key(ref)
        guard let lease = drop(key) else { return nil }
        if keepFrames { released[key] = lease }
        return lease
    }

    /// What this coordinator must do about a job another coordinator ended (cancelled or failed
    /// there; the store already ended every lease of it): the leases its own nodes still hold,
    /// with the CANCEL reason to send, so that they stop decoding now instead of when a frame is
    /// refused.
    struct EndedElsewhere: Sendable, Equatable {
        var reason: ErrorCode
        var leases: [Held]
    }

    /// A peer reports job `job` now `status` (with `code` when it failed): when that status ends
    /// the job's work, its leases held here are dropped (slots freed, frames kept for a resume
    /// forgotten) and returned for CANCEL, in segment order; nil when the job is still queued or
    /// running. Completed counts as ended too: normally no lease here outlives it, but the
    /// caller still drops its local spool of the job (frames of leases this coordinator lost to
    /// a take-over), and a lease it still believes held is useless work.
    mutating func jobEndedElsewhere(_ job: UUID, status: JobStatus, code: ErrorCode?) -> EndedElsewhere? {
        let reason: ErrorCode
        switch status {
        case .queued, .processing: return nil
        case .completed, .cancelled, .expired: reason = .cancelled
        case .failed: reason = code ?? .cancelled
        }
        let keys = active.keys.filter { $0.job == job }.sorted { $0.segment < $1.segment }
        let leases = keys.compactMap { drop($0) }
        forgetJob(job)
        return EndedElsewhere(reason: reason, leases: leases)
    }

    /// A job is finished, failed or cancelled: frames kept for its requeued leases are no longer needed.
    mutating func forgetJob(_ job: UUID) {
        for key in released.keys where key.job == job { released[key] = nil }
    }

    // MARK: ticks

    /// Leases past their progress deadline at `now`, oldest first; progress
    /// entries of leases no longer held are cleared on the way.
    mutating func stalled(at now: Instant) -> [Stalled] {
        var result: [Stalled] = []
        for ref in progress.overdue(at: now) {
            guard let lease = active[Key(ref)], lease.ref == ref else {
                progress.stop(ref)
                continue
            }
            result.append(Stalled(ref: ref, node: lease.node, limit: progress.rule.limit(for: lease.spec)))
        }
        return result
    }

    // MARK: heartbeats

    /// A heartbeat from `name`: its leases are renewed at the next flush.
    mutating func heartbeat(_ name: String) {
        guard nodes[name] != nil else { return }
        renewals.insert(name)
    }

    /// The nodes to renew now (one statement for all), in name order; the set starts over.
    mutating func takeRenewals() -> [String] {
        defer { renewals = [] }
        return renewals.sorted()
    }

    // MARK: private

    /// The one way a lease stops being held: out of `active`, the slots and the progress watch.
    @discardableResult
    private mutating func drop(_ key: Key) -> Held? {
        guard let lease = active.removeValue(forKey: key) else { return nil }
        ledger.release(lease.ref, from: lease.node)
        progress.stop(lease.ref)
        return lease
    }
}
