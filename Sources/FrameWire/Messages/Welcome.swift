import FrameCore
import NIOCore

/// `WELCOME` (0x02, coordinator to node): accepts a ``Hello``, fixes the
/// protocol version and the heartbeat timing, and says which of the node's
/// held leases it may keep working on.
///
/// The timing travels in the handshake so that only the coordinator's
/// configuration decides it; a node must drop every held lease not listed
/// in `resumedLeases` (it was requeued or fenced while the node was away).
public struct Welcome: Sendable, Hashable {
    /// The negotiated version: the highest one both sides support.
    public var version: UInt16
    /// Identifies the coordinator instance (for logs; free text).
    public var coordinatorID: String
    /// How often each side sends `HEARTBEAT`.
    public var heartbeatIntervalMillis: UInt32
    /// Silence (no frame at all) after which each side declares the other lost.
    public var heartbeatTimeoutMillis: UInt32
    /// The subset of `Hello.heldLeases` the node may continue.
    public var resumedLeases: [LeaseRef]

    public init(
        version: UInt16, coordinatorID: String, heartbeatIntervalMillis: UInt32 = 1000,
        heartbeatTimeoutMillis: UInt32 = 3000, resumedLeases: [LeaseRef] = []
    ) {
        self.version = version
        self.coordinatorID = coordinatorID
        self.heartbeatIntervalMillis = heartbeatIntervalMillis
        self.heartbeatTimeoutMillis = heartbeatTimeoutMillis
        self.resumedLeases = resumedLeases
    }
}

extension Welcome: WirePayload {
    static var messageType: MessageType { .welcome }

    func encodePayload(into buffer: inout ByteBuffer) {
        buffer.writeWire(version)
        buffer.writeWire(coordinatorID)
        buffer.writeWire(heartbeatIntervalMillis)
        buffer.writeWire(heartbeatTimeoutMillis)
        buffer.writeWireArray16(resumedLeases) { $0.writeWire($1) }
    }

    init(payload buffer: inout ByteBuffer) throws(WireError) {
        version = try buffer.readWire(UInt16.self, "WELCOME.version")
        coordinatorID = try buffer.readWireString("WELCOME.coordinatorID")
        heartbeatIntervalMillis = try buffer.readWire(UInt32.self, "WELCOME.heartbeatIntervalMillis")
        heartbeatTimeoutMillis = try buffer.readWire(UInt32.self, "WELCOME.heartbeatTimeoutMillis")
        resumedLeases = try buffer.readWireArray16("WELCOME.resumedLeases", minElementSize: ByteBuffer.leaseRefSize) {
            (b: inout ByteBuffer) throws(WireError) in try b.readWireLeaseRef("WELCOME.resumedLeases")
        }
    }
}
