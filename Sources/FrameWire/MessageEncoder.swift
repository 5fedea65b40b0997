import NIOCore

/// The outbound half of the pipeline: ``Message`` in, framed bytes out. Use
/// it as `MessageToByteHandler(MessageEncoder())`.
///
/// Stateless; encoding cannot fail, so the only errors a write sees are the
/// channel's own.
public struct MessageEncoder: MessageToByteEncoder, Sendable {
    public typealias OutboundIn = Message

    public init() {}

    public func encode(data: Message, out: inout ByteBuffer) throws {
        FrameCodec.encode(data, into: &out)
    }
}
