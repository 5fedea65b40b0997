import FrameWire

/// Receives the lease traffic of node sessions: the scheduler implements it.
///
/// The session owns the connection and the handshake; everything about work
/// (leases, reads, frames, results) is the scheduler's, behind this seam.
public protocol NodeWorkHandler: Sendable {
    /// A node's HELLO was accepted: decide which of its held leases it may
    /// resume (WELCOME `resumedLeases`). Nothing may be sent to it yet, and it
    /// is not eligible for new leases until ``nodeReady(name:session:)``.
    /// `session` identifies this connection: a node that reconnects gets a new one.
    func nodeJoined(name: String, session: UInt64, slots: Int, labels: [String: String], heldLeases: [LeaseRef],
                    send: @escaping @Sendable (Message) async -> Void) async -> [LeaseRef]
    /// The same, knowing the protocol version negotiated with the node (what it can be sent:
    /// LEASE_URL needs ``ProtocolVersion/directReads``). The default ignores the version.
    func nodeJoined(name: String, session: UInt64, slots: Int, labels: [String: String], heldLeases: [LeaseRef],
                    protocolVersion: UInt16, send: @escaping @Sendable (Message) async -> Void) async -> [LeaseRef]
    /// WELCOME has been written on `session`: the node may now be sent messages and leased work.
    func nodeReady(name: String, session: UInt64) async
    /// A node's session ended (closed, lost, revoked): its leases must be requeued,
    /// unless a newer session of the same node has already taken over.
    /// `mayResume` is true when the connection just dropped (EOF or reset without
    /// GOODBYE, not closed by us, no heartbeat timeout): the node may be back in a
    /// moment to resume its leases, so they may be held for a short grace.
    func nodeLeft(name: String, session: UInt64, reason: String, mayResume: Bool) async
    /// A node stopped taking new work.
    func nodeDraining(name: String) async
    /// READ, FRAME, SEGMENT_DONE, SEGMENT_FAILED or a non-fatal ERROR from a node.
    func receive(_ message: Message, from node: String) async
    /// A heartbeat from a node: renew its leases. Called on the session's event loop for
    /// every heartbeat of every node, so it must only note it (no waiting, no I/O).
    func heartbeat(from node: String)
    /// Evidence of life other than a heartbeat, noted on the session's event loop like one: the
    /// node's frames arrived since the last check, or its session is waiting for this coordinator
    /// to read it (its heartbeats are queued behind its frames then). Its leases are renewed, not
    /// left to expire because this side fell behind. Must only note it.
    func stillWorking(_ node: String)
}

extension NodeWorkHandler {
    /// Handlers that do not renew leases on evidence of life ignore it.
    public func stillWorking(_ node: String) {}

    public func nodeJoined(name: String, session: UInt64, slots: Int, labels: [String: String], heldLeases: [LeaseRef],
                           protocolVersion: UInt16, send: @escaping @Sendable (Message) async -> Void) async -> [LeaseRef] {
        await nodeJoined(name: name, session: session, slots: slots, labels: labels, heldLeases: heldLeases, send: send)
    }
}

import FrameCore
