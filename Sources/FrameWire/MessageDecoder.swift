import NIOCore

/// The inbound half of the pipeline: bytes in, ``Message`` out. Use it as
/// `ByteToMessageHandler(MessageDecoder(maxFrameLength:))`.
///
/// The length is checked as soon as its four bytes arrive, so a peer
/// announcing an oversized frame gets an error (``WireError`` `.oversized`,
/// fired through `errorCaught`) before any of the body is buffered. The
/// handler owning this decoder stops decoding after an error; the session
/// handler answers with a fatal ERROR and closes.
public struct MessageDecoder: ByteToMessageDecoder, Sendable {
    public typealias InboundOut = Message

    public let maxFrameLength: Int

    public init(maxFrameLength: Int = FrameCodec.defaultMaxFrameLength) {
        self.maxFrameLength = maxFrameLength
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let message = try FrameCodec.decodeFrame(from: &buffer, maxFrameLength: maxFrameLength) else {
            return .needMoreData
        }
        context.fireChannelRead(Self.wrapInboundOut(message))
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        // Complete frames that arrived with the close are still delivered.
        while let message = try FrameCodec.decodeFrame(from: &buffer, maxFrameLength: maxFrameLength) {
            context.fireChannelRead(Self.wrapInboundOut(message))
        }
        // A peer that closes mid-frame sent a truncated frame; say so rather than drop it silently.
        if seenEOF, buffer.readableBytes > 0 {
            let pending = buffer.readableBytes
            buffer.moveReaderIndex(forwardBy: pending)
            throw WireError(.truncated, message: "connection closed with \(pending) bytes of an incomplete frame")
        }
        return .needMoreData
    }
}
