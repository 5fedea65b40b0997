import FrameCore
import NIOCore

/// `ERROR` (0x7F, both directions): reports a protocol-level problem to
/// the peer, optionally about one lease.
///
/// With `fatal` set the sender closes the connection right after this frame
/// (bad frames, failed handshakes); without it the session goes on (for
/// example STALE_EPOCH on a FRAME of a lease that moved, whose data is
/// discarded). `code` is a raw ErrorCode value kept as `UInt16` so unknown
/// codes still decode.
public struct ErrorMessage: Sendable, Hashable {
    public var code: UInt16
    /// True: the sender closes the connection right after this frame.
    public var fatal: Bool
    /// Human-readable detail (free text, may be empty).
    public var message: String
    /// The lease the error is about, if any.
    public var lease: LeaseRef?

    public init(code: UInt16, fatal: Bool, message: String, lease: LeaseRef? = nil) {
        self.code = code
        self.fatal = fatal
        self.message = message
        self.lease = lease
    }

    public init(code: ErrorCode, fatal: Bool, message: String, lease: LeaseRef? = nil) {
        self.init(code: code.rawValue, fatal: fatal, message: message, lease: lease)
    }

    /// The fatal ERROR that answers a frame the codec rejected.
    public init(_ error: WireError) {
        self.init(code: error.code, fatal: true, message: error.message)
    }

    /// The code as an ErrorCode, or nil if this build does not know it.
    public var errorCode: ErrorCode? { ErrorCode(rawValue: code) }
}

extension ErrorMessage: WirePayload {
    static var messageType: MessageType { .error }

    func encodePayload(into buffer: inout ByteBuffer) {
        buffer.writeWire(code)
        buffer.writeWire(fatal)
        buffer.writeWire(message)
        buffer.writeWire(lease != nil)
        if let lease { buffer.writeWire(lease) }
    }

    init(payload buffer: inout ByteBuffer) throws(WireError) {
        code = try buffer.readWire(UInt16.self, "ERROR.code")
        fatal = try buffer.readWireBool("ERROR.fatal")
        message = try buffer.readWireString("ERROR.message")
        lease = try buffer.readWireBool("ERROR.leasePresent") ? try buffer.readWireLeaseRef("ERROR.lease") : nil
    }
}
