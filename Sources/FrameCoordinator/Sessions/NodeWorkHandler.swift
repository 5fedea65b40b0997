import FrameWire

/// Receives the lease traffic of node sessions: the scheduler implements it.
///
/// The session owns the connection and the handshake; everything about work
/// (leases, reads, frames, results) is the scheduler's, behind this seam.
public protocol NodeWorkHandler: Sendable {
    /// A node finished its handshake and can take work through `send`.
    /// `session` identifies this connection: a node that reconnects gets a new one.
    func nodeJoined(name: String, session: UInt64, slots: Int, labels: [String: String], heldLeases: [LeaseRef],
                    send: @escaping @Sendable (Message) async -> Void) async -> [LeaseRef]
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
    /// A heartbeat from a node: renew its leases.
    func heartbeat(from node: String) async
}

import FrameCore
