import FrameCore
import NIOCore

/// `SEGMENT_FAILED` (0x15, node to coordinator): the node gives up on a
/// leased segment and releases the lease.
///
/// `code` stays a raw `UInt16` so that a failure code added by a newer node
/// still decodes (use ``errorCode``). `retryable` is the node's judgement
/// (usually `ErrorCode.isRetryable`); the coordinator requeues a retryable
/// failure while attempts remain and fails the job otherwise.
public struct SegmentFailed: Sendable, Hashable {
    public var lease: LeaseRef
    /// An ErrorCode raw value, possibly one this build does not know.
    public var code: UInt16
    public var retryable: Bool
    /// Human-readable detail (free text, may be empty).
    public var message: String

    public init(lease: LeaseRef, code: UInt16, retryable: Bool, message: String) {
        self.lease = lease
        self.code = code
        self.retryable = retryable
        self.message = message
    }

    /// A failure with a known code; `retryable` defaults to the code's own judgement.
    public init(lease: LeaseRef, code: ErrorCode, retryable: Bool? = nil, message: String) {
        self.init(lease: lease, code: code.rawValue, retryable: retryable ?? code.isRetryable, message: message)
    }

    /// The code as an ErrorCode, or nil if this build does not know it.
    public var errorCode: ErrorCode? { ErrorCode(rawValue: code) }
}

extension SegmentFailed: WirePayload {
    static var messageType: MessageType { .segmentFailed }

    func encodePayload(into buffer: inout ByteBuffer) {
        buffer.writeWire(lease)
        buffer.writeWire(code)
        buffer.writeWire(retryable)
        buffer.writeWire(message)
    }

    init(payload buffer: inout ByteBuffer) throws(WireError) {
        lease = try buffer.readWireLeaseRef("SEGMENT_FAILED.lease")
        code = try buffer.readWire(UInt16.self, "SEGMENT_FAILED.code")
        retryable = try buffer.readWireBool("SEGMENT_FAILED.retryable")
        message = try buffer.readWireString("SEGMENT_FAILED.message")
    }
}
