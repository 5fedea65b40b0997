import FrameWire
import NIOCore
import NIOEmbedded
import Testing
@testable import FrameCluster

/// The coordinator's heartbeats, sent from the event loop (proto-spec/heartbeats.md).
@Suite struct HeartbeatBeaconTests {
    func heartbeats(_ channel: EmbeddedChannel) throws -> [UInt64] {
        var sequences: [UInt64] = []
        while let message = try channel.readOutbound(as: Message.self) {
            guard case .heartbeat(let hb) = message else { Issue.record("unexpected \(message)"); continue }
            #expect(hb.activeLeases == 0 && hb.framesTotal == 0)
            sequences.append(hb.sequence)
        }
        return sequences
    }

    @Test func beatsEveryIntervalOnlyOnceStarted() throws {
        let channel = EmbeddedChannel(handler: HeartbeatBeacon(interval: .seconds(1)))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        channel.embeddedEventLoop.advanceTime(by: .seconds(5))
        #expect(try heartbeats(channel) == [], "nothing before the handshake has started it")

        try channel.triggerUserOutboundEvent(HeartbeatBeacon.Start()).wait()
        try channel.triggerUserOutboundEvent(HeartbeatBeacon.Start()).wait()  // a second start changes nothing
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(999))
        #expect(try heartbeats(channel) == [])
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1))
        #expect(try heartbeats(channel) == [1])
        channel.embeddedEventLoop.advanceTime(by: .seconds(3))
        #expect(try heartbeats(channel) == [2, 3, 4])

        _ = try channel.finish()
        channel.embeddedEventLoop.advanceTime(by: .seconds(3))
        #expect(try heartbeats(channel) == [], "a closed channel is not written to")
    }

    @Test func otherOutboundEventsPassThrough() throws {
        let channel = EmbeddedChannel(handler: HeartbeatBeacon(interval: .seconds(1)))
        struct Other: Sendable {}
        // The beacon hands other events on, not swallow them: the embedded head refuses them.
        #expect(throws: ChannelError.operationUnsupported) { try channel.triggerUserOutboundEvent(Other()).wait() }
        channel.embeddedEventLoop.advanceTime(by: .seconds(2))
        #expect(try heartbeats(channel) == [])
    }
}
