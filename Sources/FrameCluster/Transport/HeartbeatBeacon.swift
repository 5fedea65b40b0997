import FrameWire
import NIOCore

/// Sends one side's HEARTBEATs from the channel's own event loop, once started.
///
/// The coordinator owes every node a HEARTBEAT per interval (proto-spec/heartbeats.md). Sent by
/// a sleeping task per session, each one cost a timer on the global executor, a task wake-up and
/// a hop through the async writer onto the event loop: with a thousand idle nodes that was a
/// fifth of the coordinator's CPU. A repeated task on the event loop writes the same 24 bytes
/// with none of that. Started by the session (``Start``) once WELCOME is written, so nothing
/// precedes the handshake; stopped when the channel goes inactive or the handler is removed.
public final class HeartbeatBeacon: ChannelOutboundHandler, RemovableChannelHandler {
    public typealias OutboundIn = Message
    public typealias OutboundOut = Message

    /// The user outbound event that starts the beacon; a second one is ignored.
    public struct Start: Sendable {
        public init() {}
    }

    private let interval: TimeAmount
    private var task: RepeatedTask?
    private var sequence: UInt64 = 0

    public init(interval: TimeAmount) {
        self.interval = interval
    }

    public func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        guard event is Start else {
            context.triggerUserOutboundEvent(event, promise: promise)
            return
        }
        if task == nil, context.channel.isActive {
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            task = context.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
                let (beacon, context) = bound.value
                beacon.beat(context)
            }
        }
        promise?.succeed()
    }

    private func beat(_ context: ChannelHandlerContext) {
        guard context.channel.isActive else { stop(); return }
        sequence += 1
        context.writeAndFlush(wrapOutboundOut(.heartbeat(Heartbeat(sequence: sequence, activeLeases: 0, framesTotal: 0))), promise: nil)
    }

    private func stop() {
        task?.cancel()
        task = nil
    }

    public func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if mode == .all { stop() }
        context.close(mode: mode, promise: promise)
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        stop()
    }
}
