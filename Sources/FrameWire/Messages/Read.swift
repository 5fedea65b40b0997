import FrameCore
import NIOCore

/// `READ` (0x11, node to coordinator): asks for a byte range of the leased
/// segment's source file; the coordinator answers with ``ReadData`` carrying
/// the same `requestID`.
///
/// Nodes never see the coordinator's file system: libavformat on the node
/// reads through these requests. The cap of 1 MiB per request keeps one
/// answer well under the frame limit and lets reads of several slots
/// interleave on the one connection.
public struct Read: Sendable, Hashable {
    /// The largest `length` a READ may ask for.
    public static let maxLength: UInt32 = 1024 * 1024

    /// Chosen by the node, echoed in the answer; unique among its outstanding reads.
    public var requestID: UInt32
    public var lease: LeaseRef
    public var offset: UInt64
    /// 1 ... ``maxLength`` bytes.
    public var length: UInt32

    public init(requestID: UInt32, lease: LeaseRef, offset: UInt64, length: UInt32) {
        self.requestID = requestID
        self.lease = lease
        self.offset = offset
        self.length = length
    }
}

extension Read: WirePayload {
    static var messageType: MessageType { .read }

    func encodePayload(into buffer: inout ByteBuffer) {
        buffer.writeWire(requestID)
        buffer.writeWire(lease)
        buffer.writeWire(offset)
        buffer.writeWire(length)
    }

    init(payload buffer: inout ByteBuffer) throws(WireError) {
        requestID = try buffer.readWire(UInt32.self, "READ.requestID")
        lease = try buffer.readWireLeaseRef("READ.lease")
        offset = try buffer.readWire(UInt64.self, "READ.offset")
        length = try buffer.readWire(UInt32.self, "READ.length")
        guard (1...Self.maxLength).contains(length) else {
            throw .malformed("READ.length must be 1...\(Self.maxLength), got \(length)")
        }
    }
}
