import FrameCore
import FrameWire
import NIOCore

/// Answers a frame the codec cannot accept (malformed, oversized, unknown
/// type) with a fatal `ERROR` carrying the codec's code, then closes.
///
/// The decoder stops decoding after its first error, so the connection is
/// useless from then on; telling the peer why makes a broken implementation
/// in another language debuggable from its own logs.
public final class ProtocolErrorResponder: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = Message
    public typealias InboundOut = Message
    public typealias OutboundOut = Message

    public init() {}

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let wireError = error as? WireError {
            context.writeAndFlush(wrapOutboundOut(.error(ErrorMessage(wireError))), promise: nil)
            context.fireErrorCaught(error)
            context.close(promise: nil)
            return
        }
        context.fireErrorCaught(error)
    }
}
