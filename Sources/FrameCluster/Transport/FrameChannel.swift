import FrameWire
import NIOCore
import NIOSSL

/// The channel pipeline both ends of the node protocol share: TLS, then the
/// length-prefixed frame codec, then (optionally) read-idle detection, with
/// `Message` values at the top.
public enum FrameChannel {
    /// The async channel type sessions work with.
    public typealias Async = NIOAsyncChannel<Message, Message>

    /// Adds the codec handlers after an already-added TLS handler, then, for the side that
    /// watches its peer: with `heartbeats`, a ``HeartbeatBeacon`` on that shared clock (beats
    /// and read-idle detection from one timer pair per event loop, the coordinator's way); else
    /// with `readTimeout`, an `IdleStateHandler` of its own. Either ends in a ``ReadIdleCloser``.
    /// Must run on the channel's event loop.
    public static func addCodec(
        to channel: any Channel, maxFrameLength: Int, readTimeout: TimeAmount?, heartbeats: HeartbeatClock? = nil
    ) throws {
        let ops = channel.pipeline.syncOperations
        try ops.addHandler(ByteToMessageHandler(MessageDecoder(maxFrameLength: maxFrameLength)))
        try ops.addHandler(MessageToByteHandler(MessageEncoder()))
        try ops.addHandler(ProtocolErrorResponder())
        if let heartbeats {
            try ops.addHandler(HeartbeatBeacon(clock: heartbeats))
            if heartbeats.readTimeout != nil { try ops.addHandler(ReadIdleCloser()) }
        } else if let readTimeout {
            try ops.addHandler(IdleStateHandler(readTimeout: readTimeout))
            try ops.addHandler(ReadIdleCloser())
        }
    }

    /// Wraps a fully configured channel for structured-concurrency use.
    public static func wrap(_ channel: any Channel) throws -> Async {
        try NIOAsyncChannel<Message, Message>(wrappingChannelSynchronously: channel)
    }
}

/// Closes the connection when the peer has been silent for the read timeout.
///
/// `IdleStateHandler` only reports idleness; this handler acts on it. It first
/// sends a best-effort fatal `ERROR HEARTBEAT_TIMEOUT` so a peer that is merely
/// slow learns why, then fires ``TransportError/heartbeatTimeout`` so the
/// session sees the reason rather than a plain end of stream, then closes.
public final class ReadIdleCloser: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = Message
    public typealias InboundOut = Message
    public typealias OutboundIn = Message
    public typealias OutboundOut = Message

    public init() {}

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read {
            let error = ErrorMessage(
                code: ErrorCode.heartbeatTimeout.rawValue, fatal: true,
                message: "no frame received within the heartbeat timeout", lease: nil)
            context.writeAndFlush(wrapOutboundOut(.error(error)), promise: nil)
            context.fireErrorCaught(TransportError.heartbeatTimeout)
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}

import FrameCore
