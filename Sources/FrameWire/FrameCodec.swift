import NIOCore

/// The length-prefixed frame format of proto-spec/framing.md:
/// `length:u32 BE | type:u8 | flags:u8 | payload`, where `length` counts
/// the bytes after itself (2 + payload).
///
/// Pure functions over `ByteBuffer`, with no channel or state, so the same
/// code serves the NIO handlers, the tests and any tool that reads captures.
/// Decoding is strict: every byte must be accounted for, so that a decoded
/// message re-encodes to exactly the bytes it came from.
public enum FrameCodec {
    /// The receiver's default limit on the `length` field: a 16 MiB image plus 64 KiB of headroom.
    public static let defaultMaxFrameLength: Int = 16 * 1024 * 1024 + 64 * 1024
    /// Bytes of the length prefix.
    public static let lengthPrefixSize = 4
    /// Bytes of type and flags, the smallest legal `length`.
    public static let headerSize = 2

    /// Appends one complete frame (length prefix included).
    public static func encode(_ message: Message, into buffer: inout ByteBuffer) {
        let lengthIndex = buffer.writerIndex
        buffer.writeInteger(UInt32(0), endianness: .big)  // patched below, once the payload size is known
        let payload = message.payload  // one existential, not one per use
        buffer.writeInteger(payload.messageType.rawValue)
        buffer.writeInteger(UInt8(0))  // flags: reserved
        payload.encodePayload(into: &buffer)
        let length = buffer.writerIndex - lengthIndex - lengthPrefixSize
        precondition(length <= Int(UInt32.max), "a frame body cannot exceed 4 GiB")
        buffer.setInteger(UInt32(length), at: lengthIndex, endianness: .big)
    }

    /// One complete frame as a new buffer.
    public static func encode(_ message: Message) -> ByteBuffer {
        var buffer = ByteBuffer()
        encode(message, into: &buffer)
        return buffer
    }

    /// Decodes one frame body (the bytes after the length prefix: type, flags, payload); the whole buffer must be consumed.
    public static func decode(body: inout ByteBuffer) throws(WireError) -> Message {
        guard body.readableBytes >= headerSize else {
            throw .malformed("frame body of \(body.readableBytes) bytes is shorter than type and flags")
        }
        let typeByte = try body.readWire(UInt8.self, "type")
        let flags = try body.readWire(UInt8.self, "flags")
        // Check the type before the flags: an unknown type is the more useful diagnosis.
        guard let type = MessageType(rawValue: typeByte) else { throw WireError(.unknownType(typeByte)) }
        guard flags == 0 else {
            throw .malformed("\(type.name): flags must be 0, got 0x\(String(flags, radix: 16))")
        }
        let message = try Message(type: type, payload: &body)
        guard body.readableBytes == 0 else {
            throw .malformed("\(type.name): \(body.readableBytes) trailing bytes after the payload")
        }
        return message
    }

    /// Decodes one complete frame from the front of `buffer` if it's all there: nil if more bytes are needed; throws oversized as soon as the length prefix is readable.
    ///
    /// On success the frame is consumed. On an oversized or too-short length
    /// nothing is consumed (the connection must close: frame boundaries are
    /// lost). When the body itself is bad the whole frame is consumed before
    /// throwing, since its boundaries are still known.
    public static func decodeFrame(from buffer: inout ByteBuffer, maxFrameLength: Int) throws(WireError) -> Message? {
        guard let length32 = buffer.getInteger(at: buffer.readerIndex, endianness: .big, as: UInt32.self) else {
            return nil
        }
        let length = Int(length32)
        guard length <= maxFrameLength else { throw WireError(.oversized(length: length, limit: maxFrameLength)) }
        guard length >= headerSize else { throw .malformed("frame length \(length) is shorter than type and flags") }
        guard buffer.readableBytes >= lengthPrefixSize + length else { return nil }
        buffer.moveReaderIndex(forwardBy: lengthPrefixSize)
        var body = buffer.readSlice(length: length)!  // just checked
        return try decode(body: &body)
    }
}
