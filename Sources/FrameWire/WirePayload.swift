import NIOCore

/// What every message struct provides to the codec: its type byte and the
/// encoding of its payload (the bytes after `type` and `flags`).
///
/// Internal on purpose: the public surface is ``Message`` and ``FrameCodec``;
/// this protocol only keeps the per-message files uniform and lets the codec
/// dispatch without a second hand-written switch per direction.
protocol WirePayload: Sendable, Hashable {
    static var messageType: MessageType { get }
    /// Appends the payload fields in wire order.
    func encodePayload(into buffer: inout ByteBuffer)
    /// Reads the payload fields in wire order. The codec checks for trailing bytes afterwards.
    init(payload buffer: inout ByteBuffer) throws(WireError)
}
