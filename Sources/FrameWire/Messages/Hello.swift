import FrameCore
import NIOCore

/// `HELLO` (0x01, node to coordinator): the first frame a node sends on a
/// new connection, announcing who it is, what it can run and which leases it
/// still holds from before a reconnect.
///
/// The coordinator answers with ``Welcome`` (or a fatal ``ErrorMessage``).
/// `nodeName` must equal the common name of the node's TLS client
/// certificate; the certificate, not this field, is the identity, and the
/// field only lets the coordinator catch a misconfigured node early.
public struct Hello: Sendable, Hashable {
    /// Lowest protocol version the node speaks.
    public var minVersion: UInt16
    /// Highest protocol version the node speaks.
    public var maxVersion: UInt16
    public var nodeName: String
    /// The node's build, for logs and the admin API (free text).
    public var softwareVersion: String
    /// How many segments the node decodes at once.
    public var slots: UInt16
    /// Free-form scheduling labels (e.g. `gpu=none`), in the order given.
    public var labels: [Label]
    /// Leases the node is still working on after a reconnect; empty on first connect.
    public var heldLeases: [LeaseRef]

    public init(
        minVersion: UInt16 = ProtocolVersion.supported.lowerBound,
        maxVersion: UInt16 = ProtocolVersion.supported.upperBound,
        nodeName: String, softwareVersion: String, slots: UInt16,
        labels: [Label] = [], heldLeases: [LeaseRef] = []
    ) {
        self.minVersion = minVersion
        self.maxVersion = maxVersion
        self.nodeName = nodeName
        self.softwareVersion = softwareVersion
        self.slots = slots
        self.labels = labels
        self.heldLeases = heldLeases
    }

    public typealias Label = FrameWire.Label
}

/// One `key=value` scheduling label of a node, as sent in ``Hello``.
///
/// A list rather than a dictionary so that decoding and re-encoding keeps the
/// sender's order byte for byte; keys should be unique, and if one repeats the
/// last value wins.
public struct Label: Sendable, Hashable {
    public var key: String
    public var value: String

    public init(key: String, value: String) {
        self.key = key
        self.value = value
    }
}

extension Hello: WirePayload {
    static var messageType: MessageType { .hello }

    func encodePayload(into buffer: inout ByteBuffer) {
        buffer.writeWire(minVersion)
        buffer.writeWire(maxVersion)
        buffer.writeWire(nodeName)
        buffer.writeWire(softwareVersion)
        buffer.writeWire(slots)
        buffer.writeWireArray16(labels) { buffer, label in
            buffer.writeWire(label.key)
            buffer.writeWire(label.value)
        }
        buffer.writeWireArray16(heldLeases) { $0.writeWire($1) }
    }

    init(payload buffer: inout ByteBuffer) throws(WireError) {
        minVersion = try buffer.readWire(UInt16.self, "HELLO.minVersion")
        maxVersion = try buffer.readWire(UInt16.self, "HELLO.maxVersion")
        nodeName = try buffer.readWireString("HELLO.nodeName")
        softwareVersion = try buffer.readWireString("HELLO.softwareVersion")
        slots = try buffer.readWire(UInt16.self, "HELLO.slots")
        labels = try buffer.readWireArray16("HELLO.labels", minElementSize: 4) { (b: inout ByteBuffer) throws(WireError) in
            Label(key: try b.readWireString("HELLO.labels.key"), value: try b.readWireString("HELLO.labels.value"))
        }
        heldLeases = try buffer.readWireArray16("HELLO.heldLeases", minElementSize: ByteBuffer.leaseRefSize) {
            (b: inout ByteBuffer) throws(WireError) in try b.readWireLeaseRef("HELLO.heldLeases")
        }
    }
}
