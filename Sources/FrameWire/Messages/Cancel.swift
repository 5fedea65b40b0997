import FrameCore
import NIOCore

/// `CANCEL` (0x16, coordinator to node): stop working on a lease now and
/// send nothing more for it.
///
/// Sent when the job is cancelled or the lease was moved elsewhere. The node
/// answers nothing; frames already in flight are discarded by the coordinator
/// (their epoch is stale). `reason` is a raw ErrorCode value kept as `UInt16`
/// so that unknown codes still decode.
public struct Cancel: Sendable, Hashable {
    public var lease: LeaseRef
    /// An ErrorCode raw value, e.g. CANCELLED or STALE_EPOCH.
    public var reason: UInt16

    public init(lease: LeaseRef, reason: UInt16) {
        self.lease = lease
        self.reason = reason
    }

    public init(lease: LeaseRef, reason: ErrorCode) {
        self.init(lease: lease, reason: reason.rawValue)
    }

    /// The reason as an ErrorCode, or nil if this build does not know it.
    public var errorCode: ErrorCode? { ErrorCode(rawValue: reason) }
}

extension Cancel: WirePayload {
    static var messageType: MessageType { .cancel }

    func encodePayload(into buffer: inout ByteBuffer) {
        buffer.writeWire(lease)
        buffer.writeWire(reason)
    }

    init(payload buffer: inout ByteBuffer) throws(WireError) {
        lease = try buffer.readWireLeaseRef("CANCEL.lease")
        reason = try buffer.readWire(UInt16.self, "CANCEL.reason")
    }
}
