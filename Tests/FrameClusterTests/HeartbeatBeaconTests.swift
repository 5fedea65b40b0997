import FrameCore
import Foundation
import FrameWire
import NIOCore
import NIOEmbedded
import Synchronization
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

/// One clock for all of a listener's sessions: per event loop one beat timer and one silence
/// sweep, heartbeats from nodes noted on the event loop (issue 13: the idle cost of a node).
@Suite struct HeartbeatClockTests {
    func sequences(_ channel: EmbeddedChannel) throws -> [UInt64] {
        var sequences: [UInt64] = []
        while let message = try channel.readOutbound(as: Message.self) {
            if case .heartbeat(let hb) = message { sequences.append(hb.sequence) }
        }
        return sequences
    }

    @Test func everySessionOfALoopBeatsFromTheSameTwoTimers() throws {
        let loop = EmbeddedEventLoop()
        let clock = HeartbeatClock(interval: .seconds(1), readTimeout: .seconds(5))
        var channels: [EmbeddedChannel] = []
        for _ in 0..<50 {
            let channel = EmbeddedChannel(handler: HeartbeatBeacon(clock: clock), loop: loop)
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
            try channel.triggerUserOutboundEvent(HeartbeatBeacon.Start()).wait()
            channels.append(channel)
        }
        #expect(clock.scheduledTimers == 2, "one beat timer and one sweep for the loop, not one per session")
        loop.advanceTime(by: .seconds(1))
        for channel in channels { #expect(try sequences(channel) == [1]) }
        loop.advanceTime(by: .seconds(2))
        for channel in channels { #expect(try sequences(channel) == [2, 3]) }

        // Sessions leave as their channels close; the timers go with the last one. (close, not
        // finish: finish runs every scheduled task of the shared loop at once.)
        for channel in channels.dropLast() { try channel.close().wait() }
        #expect(clock.scheduledTimers == 2)
        loop.advanceTime(by: .seconds(1))
        #expect(try sequences(channels.last!) == [4])
        for channel in channels.dropLast() { #expect(try sequences(channel) == []) }
        try channels.last!.close().wait()
        #expect(clock.scheduledTimers == 0)
        for channel in channels { _ = try channel.finish(acceptAlreadyClosed: true) }
    }

    @Test func aSilentPeerIsReportedWithinTheTimeoutAndAQuarter() throws {
        let loop = EmbeddedEventLoop()
        let clock = HeartbeatClock(interval: .milliseconds(300), readTimeout: .seconds(1))
        #expect(clock.sweepInterval == .milliseconds(250))
        let channel = EmbeddedChannel(handlers: [HeartbeatBeacon(clock: clock), ReadIdleCloser()], loop: loop)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()

        // Any frame is proof of life, before the handshake's end too.
        loop.advanceTime(by: .milliseconds(900))
        try channel.writeInbound(Message.heartbeat(Heartbeat(sequence: 0, activeLeases: 0, framesTotal: 0)))
        _ = try channel.readInbound(as: Message.self)
        loop.advanceTime(by: .milliseconds(900))
        #expect(channel.isActive, "heard from 0.9 s ago")
        // Silent since 0.9 s: the sweep at 2.0 s finds 1.1 s of silence.
        loop.advanceTime(by: .milliseconds(200))
        #expect(!channel.isActive)
        let error = try #require(try channel.readOutbound(as: Message.self))
        guard case .error(let e) = error else { Issue.record("expected ERROR, got \(error)"); return }
        #expect(e.code == ErrorCode.heartbeatTimeout.rawValue && e.fatal)
        #expect(throws: TransportError.heartbeatTimeout) { try channel.throwIfErrorCaught() }
        #expect(clock.scheduledTimers == 0)
    }

    @Test func startedWithANoteTakerHeartbeatsStayOnTheLoop() throws {
        final class Notes: Sendable { let sequences = Mutex<[UInt64]>([]) }
        let noted = Notes()
        let channel = EmbeddedChannel(handler: HeartbeatBeacon(interval: .seconds(1)))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        func beat(_ sequence: UInt64, frames: UInt64 = 0) -> Message {
            .heartbeat(Heartbeat(sequence: sequence, activeLeases: 0, framesTotal: frames))
        }
        // Before the start (the handshake), every frame goes to the session.
        try channel.writeInbound(beat(1))
        #expect(try channel.readInbound(as: Message.self) == beat(1))

        try channel.triggerUserOutboundEvent(HeartbeatBeacon.Start { hb in
            guard hb.framesTotal < 1000 else { return false }  // refused: the session must see it
            noted.sequences.withLock { $0.append(hb.sequence) }
            return true
        }).wait()
        try channel.writeInbound(beat(2))
        try channel.writeInbound(beat(3))
        #expect(try channel.readInbound(as: Message.self) == nil, "taken on the loop, not passed on")
        try channel.writeInbound(beat(4, frames: 5000))
        #expect(try channel.readInbound(as: Message.self) == beat(4, frames: 5000))
        let goodbye = Message.goodbye(Goodbye(code: 0, message: "bye"))
        try channel.writeInbound(goodbye)
        #expect(try channel.readInbound(as: Message.self) == goodbye)
        #expect(noted.sequences.withLock { $0 } == [2, 3])
        _ = try channel.finish()
    }
}

/// Silence counts only while this side reads (issue 13: nodes declared lost at 1,000 busy nodes
/// because their sessions, waiting on the database, had stopped reading their heartbeats).
@Suite struct SilenceWatchTests {
    let t0 = NIODeadline.uptimeNanoseconds(1_000_000_000)
    let timeout = TimeAmount.seconds(5)

    @Test func aPeerSilentWhileWeReadIsReportedOnce() {
        var watch = SilenceWatch(since: t0)
        watch.readRequested(at: t0)
        watch.heard(at: t0 + .seconds(1))
        let fired1 = watch.check(now: t0 + .seconds(5), timeout: timeout)
        #expect(!fired1)
        let fired2 = watch.check(now: t0 + .seconds(6), timeout: timeout)
        #expect(fired2)
        let fired3 = watch.check(now: t0 + .seconds(7), timeout: timeout)
        #expect(!fired3, "reported once")
    }

    @Test func noSilenceIsCountedWhileWeDoNotRead() {
        var watch = SilenceWatch(since: t0)
        watch.readRequested(at: t0)
        // A frame comes, its cycle ends, and our side does not ask again (the session's buffer is full).
        watch.heard(at: t0 + .seconds(1))
        watch.readCycleEnded(at: t0 + .seconds(1))
        #expect(watch.paused)
        let fired4 = watch.check(now: t0 + .seconds(60), timeout: timeout)
        #expect(!fired4, "we stopped reading: the peer is not silent")
        // Reading again: the peer has a whole timeout from now.
        watch.readRequested(at: t0 + .seconds(60))
        #expect(!watch.paused)
        let fired5 = watch.check(now: t0 + .milliseconds(64_999), timeout: timeout)
        #expect(!fired5)
        let fired6 = watch.check(now: t0 + .seconds(65), timeout: timeout)
        #expect(fired6)
    }

    @Test func aReadDuringTheCycleKeepsTheCountGoing() {
        var watch = SilenceWatch(since: t0)
        watch.readRequested(at: t0)
        // Asked again after the cycle's frame: the channel still reads after the cycle.
        watch.heard(at: t0 + .milliseconds(400))
        watch.readRequested(at: t0 + .milliseconds(500))
        watch.readCycleEnded(at: t0 + .seconds(1))
        #expect(!watch.paused)
        let fired7 = watch.check(now: t0 + .seconds(6), timeout: timeout)
        #expect(fired7)
        // The next cycle without a read in it pauses, as usual.
        var next = SilenceWatch(since: t0)
        next.readRequested(at: t0)
        next.readRequested(at: t0 + .milliseconds(500))
        next.readCycleEnded(at: t0 + .seconds(1))
        next.heard(at: t0 + .seconds(2))
        next.readCycleEnded(at: t0 + .seconds(2))
        #expect(next.paused)
        // A cycle with only part of a frame keeps the read that started it: still counting.
        var partial = SilenceWatch(since: t0)
        partial.readRequested(at: t0)
        partial.readCycleEnded(at: t0 + .seconds(1))
        #expect(!partial.paused)
        let fired = partial.check(now: t0 + .seconds(6), timeout: timeout)
        #expect(fired)
    }

    @Test func aChannelThatNeverAsksToReadIsCountedThroughout() {
        // EmbeddedChannel driven by hand: no `read` ever, so cycles never pause the count.
        var watch = SilenceWatch(since: t0)
        watch.readCycleEnded(at: t0 + .seconds(1))
        #expect(!watch.paused)
        let fired8 = watch.check(now: t0 + .seconds(6), timeout: timeout)
        #expect(fired8)
    }

    /// Through the pipeline: a session that does not take its inbound messages holds back the
    /// channel's reads (``ReadGate`` does what NIOAsyncChannel's handler does with a full buffer);
    /// its node is not declared lost for that, and is once reading resumes and it stays silent.
    @Test func aSessionBehindOnItsWorkDoesNotLoseItsNode() throws {
        let loop = EmbeddedEventLoop()
        let clock = HeartbeatClock(interval: .seconds(1), readTimeout: .seconds(5))
        let head = ReadCounter()
        let gate = ReadGate()
        let channel = EmbeddedChannel(handlers: [head, HeartbeatBeacon(clock: clock), ReadIdleCloser(), gate], loop: loop)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        // What a socket channel does with autoRead: ask to read at once and after every cycle.
        channel.read()
        let lease = LeaseRef(jobID: UUID(), segment: 0, epoch: 1)
        func cycle(_ i: Int) throws {
            try channel.writeInbound(Message.read(Read(requestID: UInt32(i), lease: lease, offset: 0, length: 1)))
            channel.read()
        }
        try cycle(0)
        #expect(head.reads == 2)
        // The session's buffer is full: it holds the next read back, as long as it is behind.
        gate.isOpen = false
        try cycle(1)
        #expect(head.reads == 2, "the read was held back")
        loop.advanceTime(by: .seconds(60))
        #expect(channel.isActive, "not declared lost while our side does not read")
        // The session catches up: the held read goes out, and a node silent from then on is lost.
        gate.open()
        #expect(head.reads == 3)
        loop.advanceTime(by: .milliseconds(4_900))
        #expect(channel.isActive)
        loop.advanceTime(by: .milliseconds(350))
        #expect(!channel.isActive, "silent for a timeout of our reading")
        #expect(throws: TransportError.heartbeatTimeout) { try channel.throwIfErrorCaught() }
    }

    /// The node's leases must not expire for this side's delay: frames, and a session this side
    /// stopped reading, count as life at each sweep (``HeartbeatBeacon/Start/onAlive``); a quiet
    /// session that is read, or one heard only by heartbeats, does not.
    @Test func framesAndAnUnreadSessionAreLifeAtEachSweep() throws {
        final class Count: Sendable { let value = Atomic<Int>(0) }
        let alive = Count()
        let loop = EmbeddedEventLoop()
        let clock = HeartbeatClock(interval: .seconds(1), readTimeout: .seconds(5))
        #expect(clock.sweepInterval == .milliseconds(250))
        let gate = ReadGate()
        let channel = EmbeddedChannel(handlers: [HeartbeatBeacon(clock: clock), ReadIdleCloser(), gate], loop: loop)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try channel.triggerUserOutboundEvent(HeartbeatBeacon.Start(onHeartbeat: { _ in true }, onAlive: {
            alive.value.add(1, ordering: .relaxed)
        })).wait()
        func count() -> Int { alive.value.load(ordering: .relaxed) }
        channel.read()
        // Heartbeats alone: the heartbeat path renews, the sweep adds nothing.
        try channel.writeInbound(Message.heartbeat(Heartbeat(sequence: 1, activeLeases: 0, framesTotal: 0)))
        channel.read()
        loop.advanceTime(by: .milliseconds(250))
        #expect(count() == 0)
        // Frames: once per sweep, however many came.
        let lease = LeaseRef(jobID: UUID(), segment: 0, epoch: 1)
        for i in 0..<3 {
            try channel.writeInbound(Message.read(Read(requestID: UInt32(i), lease: lease, offset: 0, length: 1)))
            channel.read()
        }
        loop.advanceTime(by: .milliseconds(250))
        #expect(count() == 1)
        loop.advanceTime(by: .milliseconds(250))
        #expect(count() == 1, "nothing new since the last sweep")
        // This side stops reading (the session is behind): life at every sweep while it lasts.
        gate.isOpen = false
        try channel.writeInbound(Message.read(Read(requestID: 9, lease: lease, offset: 0, length: 1)))
        channel.read()
        loop.advanceTime(by: .milliseconds(250))
        loop.advanceTime(by: .milliseconds(250))
        loop.advanceTime(by: .milliseconds(250))
        #expect(count() == 4)
        gate.open()
        loop.advanceTime(by: .milliseconds(250))
        #expect(count() == 4, "reading again and nothing heard: no more life")
        _ = try channel.finish(acceptAlreadyClosed: true)
    }

    @Test func withoutTheGateASilentNodeIsStillLost() throws {
        let loop = EmbeddedEventLoop()
        let clock = HeartbeatClock(interval: .seconds(1), readTimeout: .seconds(5))
        let channel = EmbeddedChannel(handlers: [HeartbeatBeacon(clock: clock), ReadIdleCloser()], loop: loop)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        channel.read()
        try channel.writeInbound(Message.heartbeat(Heartbeat(sequence: 0, activeLeases: 0, framesTotal: 0)))
        channel.read()
        loop.advanceTime(by: .milliseconds(4_900))
        #expect(channel.isActive)
        loop.advanceTime(by: .milliseconds(350))
        #expect(!channel.isActive)
    }
}

/// Counts the `read`s that reach it (placed first: what the socket is asked).
final class ReadCounter: ChannelOutboundHandler, @unchecked Sendable {
    typealias OutboundIn = Any
    private(set) var reads = 0
    func read(context: ChannelHandlerContext) {
        reads += 1
        context.read()
    }
}

/// Holds `read` back while closed and lets one held read through when opened, as
/// NIOAsyncChannel's handler does while its consumer's buffer is above the high watermark.
final class ReadGate: ChannelOutboundHandler, @unchecked Sendable {
    typealias OutboundIn = Any
    var isOpen = true
    private var held = false
    private var context: ChannelHandlerContext?
    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func read(context: ChannelHandlerContext) {
        if isOpen { context.read() } else { held = true }
    }
    func open() {
        isOpen = true
        if held { held = false; context?.read() }
    }
}
