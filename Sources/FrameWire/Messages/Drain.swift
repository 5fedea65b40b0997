import NIOCore

/// `DRAIN` (0x20, both directions): announces a graceful wind-down.
///
/// From the coordinator: finish the current leases, no new ones will come
/// (the coordinator is shutting down or the node was cordoned). From the node:
/// it is shutting down, do not lease to it; it finishes (or fails) what it
/// holds and then sends GOODBYE. The connection stays open meanwhile, so
/// reads, frames and heartbeats keep flowing.
public struct Drain: Sendable, Hashable {
    /// Why, for logs (free text, may be empty).
    public var reason: String

    public init(reason: String) {
        self.reason = reason
    }
}

extension Drain: WirePayload {
    static var messageType: MessageType { .drain }

    func encodePayload(into buffer: inout ByteBuffer) {
        buffer.writeWire(reason)
    }

    init(payload buffer: inout ByteBuffer) throws(WireError) {
        reason = try buffer.readWireString("DRAIN.reason")
    }
}
