import FrameCore

/// The scheduler's slot accounting: per node, the slots it announced in
/// HELLO, the leases it holds and the grants being claimed for it.
///
/// This is the one place that enforces "never more outstanding leases on a
/// node than its slots" (proto-spec/messages.md, HELLO `slots`) and "no
/// LEASE before WELCOME" (handshake.md): a node joins *ineligible*, holding
/// only what it resumed, and takes new work only after ``makeEligible(_:session:)``,
/// which the session calls once WELCOME is written. Every path that may
/// hand a node a lease (the join, the tick, a result, a new job) asks
/// ``reserve(_:upTo:)`` first and turns reservations into leases with
/// ``hold(_:with:)``; a reservation made for a session that has since been
/// replaced holds nothing, so concurrent dispatches can never overfill a
/// node, whatever their interleaving on the actor.
struct SlotLedger: Sendable, Equatable {
    private struct Entry: Sendable, Equatable {
        var session: UInt64
        var slots: Int
        var eligible = false
        var held: Set<LeaseRef> = []
        var reserved = 0
    }

    /// Slots set aside for one claim on one session.
    struct Reservation: Sendable, Equatable {
        let node: String
        let session: UInt64
        fileprivate(set) var count: Int
    }

    private var nodes: [String: Entry] = [:]

    /// A node's new session: nothing held yet, no new work until it is eligible.
    /// Replaces any earlier session of the node (its reservations lapse).
    mutating func join(_ node: String, session: UInt64, slots: Int) {
        nodes[node] = Entry(session: session, slots: max(0, slots))
    }

    /// WELCOME has been written on `session`: the node may now be offered work.
    mutating func makeEligible(_ node: String, session: UInt64) {
        guard nodes[node]?.session == session else { return }
        nodes[node]?.eligible = true
    }

    /// The node stops taking work (drain); what it holds stays counted.
    mutating func makeIneligible(_ node: String) {
        nodes[node]?.eligible = false
    }

    /// `session` ended; a newer session of the same node is left alone.
    mutating func leave(_ node: String, session: UInt64) {
        guard nodes[node]?.session == session else { return }
        nodes[node] = nil
    }

    func isEligible(_ node: String) -> Bool { nodes[node]?.eligible ?? false }

    func held(by node: String) -> Set<LeaseRef> { nodes[node]?.held ?? [] }

    /// Slots neither held nor reserved; 0 for an ineligible or unknown node.
    func free(_ node: String) -> Int {
        guard let e = nodes[node], e.eligible else { return 0 }
        return max(0, e.slots - e.held.count - e.reserved)
    }

    /// Sets aside up to `limit` free slots of `node` for a claim; nil when none is free.
    mutating func reserve(_ node: String, upTo limit: Int = .max) -> Reservation? {
        let n = min(free(node), limit)
        guard n > 0, let session = nodes[node]?.session else { return nil }
        nodes[node]?.reserved += n
        return Reservation(node: node, session: session, count: n)
    }

    /// Gives back what is left of a reservation (the claim granted fewer, or is over).
    mutating func finish(_ reservation: inout Reservation) {
        if reservation.count > 0, nodes[reservation.node]?.session == reservation.session {
            nodes[reservation.node]?.reserved -= reservation.count
        }
        reservation.count = 0
    }

    /// Turns one reserved slot into a held lease. False when the reservation
    /// is used up or its session is gone: the caller must hand the grant back.
    mutating func hold(_ ref: LeaseRef, with reservation: inout Reservation) -> Bool {
        guard reservation.count > 0, var e = nodes[reservation.node], e.session == reservation.session else { return false }
        reservation.count -= 1
        e.reserved -= 1
        e.held.insert(ref)
        nodes[reservation.node] = e
        return true
    }

    /// A lease resumed on join (HELLO `heldLeases`, WELCOME `resumedLeases`):
    /// held without a reservation, but never beyond the node's slots.
    mutating func holdResumed(_ ref: LeaseRef, on node: String, session: UInt64) -> Bool {
        guard var e = nodes[node], e.session == session else { return false }
        if e.held.contains(ref) { return true }
        guard e.held.count + e.reserved < e.slots else { return false }
        e.held.insert(ref)
        nodes[node] = e
        return true
    }

    /// The node no longer holds `ref` (done, failed, cancelled, taken back).
    mutating func release(_ ref: LeaseRef, from node: String) {
        nodes[node]?.held.remove(ref)
    }
}
