import FrameCore
import NIOCore

/// `GOODBYE` (0x21, both directions): the last frame before an orderly
/// close; the sender closes the connection after sending it.
///
/// `code` 0 means a normal shutdown; otherwise it is a raw ErrorCode value
/// (for example DUPLICATE_SESSION when a newer session of the same node
/// replaces this one), kept as `UInt16` so unknown codes still decode.
public struct Goodbye: Sendable, Hashable {
    /// The `code` of a normal, error-free goodbye.
    public static let normal: UInt16 = 0

    public var code: UInt16
    /// Human-readable detail (free text, may be empty).
    public var message: String

    public init(code: UInt16 = Goodbye.normal, message: String) {
        self.code = code
        self.message = message
    }

    public init(code: ErrorCode, message: String) {
        self.init(code: code.rawValue, message: message)
    }

    /// The code as an ErrorCode; nil for a normal goodbye or a code this build does not know.
    public var errorCode: ErrorCode? { ErrorCode(rawValue: code) }
}

extension Goodbye: WirePayload {
    static var messageType: MessageType { .goodbye }

    func encodePayload(into buffer: inout ByteBuffer) {
        buffer.writeWire(code)
        buffer.writeWire(message)
    }

    init(payload buffer: inout ByteBuffer) throws(WireError) {
        code = try buffer.readWire(UInt16.self, "GOODBYE.code")
        message = try buffer.readWireString("GOODBYE.message")
    }
}
