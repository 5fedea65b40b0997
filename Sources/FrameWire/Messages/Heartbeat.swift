import NIOCore

/// `HEARTBEAT` (0x03, both directions): proof of life, sent every heartbeat
/// interval by each side, plus a little progress for the coordinator's
/// dashboards.
///
/// Liveness is judged on any frame, not only heartbeats, so a busy
/// connection never times out; the heartbeat matters when a side is idle.
/// A node's heartbeat also renews all of its leases.
public struct Heartbeat: Sendable, Hashable {
    /// Counts up from 0 per connection and direction; lets logs spot gaps.
    public var sequence: UInt64
    /// Leases the sender is working on (0 from the coordinator).
    public var activeLeases: UInt16
    /// Frames the node has produced since it started (0 from the coordinator).
    public var framesTotal: UInt64

    public init(sequence: UInt64, activeLeases: UInt16 = 0, framesTotal: UInt64 = 0) {
        self.sequence = sequence
        self.activeLeases = activeLeases
        self.framesTotal = framesTotal
    }
}

extension Heartbeat: WirePayload {
    static var messageType: MessageType { .heartbeat }

    func encodePayload(into buffer: inout ByteBuffer) {
        buffer.writeWire(sequence)
        buffer.writeWire(activeLeases)
        buffer.writeWire(framesTotal)
    }

    init(payload buffer: inout ByteBuffer) throws(WireError) {
        sequence = try buffer.readWire(UInt64.self, "HEARTBEAT.sequence")
        activeLeases = try buffer.readWire(UInt16.self, "HEARTBEAT.activeLeases")
        framesTotal = try buffer.readWire(UInt64.self, "HEARTBEAT.framesTotal")
    }
}
