import FrameWire
import Synchronization
import NIOCore

/// The coordinator's heartbeat timing for every session of one listener: per event loop, one
/// beat timer and one read-idle sweep for all of the loop's connections.
///
/// proto-spec/heartbeats.md: the coordinator owes every node a HEARTBEAT per `interval`, and
/// declares a node lost after `readTimeout` without any frame from it. A timer per connection
/// (a repeated task per beacon, an `IdleStateHandler` per pipeline) put two entries per node in
/// the loop's timer heap and rescheduled one per node per second: with a thousand idle nodes,
/// that heap's upkeep was a quarter of the coordinator's CPU. Here each loop has two timers
/// whatever its number of connections; a beat writes to every started session of the loop,
/// a sweep checks every session's time since its last inbound frame.
public final class HeartbeatClock: Sendable {
    /// How often each started session is sent a HEARTBEAT.
    public let interval: TimeAmount
    /// Silence after which a session gets `IdleStateHandler.IdleStateEvent.read`; nil: never.
    public let readTimeout: TimeAmount?
    /// How often the loop's sessions are checked for silence: a quarter of the timeout, at most
    /// 250 ms, so a lost node is noticed within the timeout plus that (proto-spec/heartbeats.md).
    public let sweepInterval: TimeAmount
    private let loops = Mutex<[ObjectIdentifier: LoopClock]>([:])

    public init(interval: TimeAmount, readTimeout: TimeAmount?) {
        self.interval = interval
        self.readTimeout = readTimeout
        self.sweepInterval = readTimeout.map { min(.nanoseconds($0.nanoseconds / 4), .milliseconds(250)) } ?? interval
    }

    /// The clock of `loop` (made on first use; it holds timers only while it has sessions).
    func clock(for loop: any EventLoop) -> LoopClock {
        loops.withLock { loops in
            if let clock = loops[ObjectIdentifier(loop)] { return clock }
            let clock = LoopClock(loop: loop, interval: interval, readTimeout: readTimeout, sweepInterval: sweepInterval)
            loops[ObjectIdentifier(loop)] = clock
            return clock
        }
    }

    /// Timers scheduled now over all loops (two per loop with sessions): for tests.
    var scheduledTimers: Int { loops.withLock { $0.values.reduce(0) { $0 + $1.timerCount } } }
}

/// One event loop's share of a ``HeartbeatClock``: its sessions, its beat timer and its sweep.
///
/// Every mutable field is touched only on `loop` (beacons join and leave from their channel's
/// handler callbacks; the timers fire there), hence `@unchecked Sendable`.
final class LoopClock: @unchecked Sendable {
    private let loop: any EventLoop
    private let interval: TimeAmount
    private let readTimeout: TimeAmount?
    private let sweepInterval: TimeAmount
    private var members: [HeartbeatBeacon] = []
    private var beatTimer: Scheduled<Void>?
    private var sweepTimer: Scheduled<Void>?
    private var nextBeat = NIODeadline.uptimeNanoseconds(0)

    init(loop: any EventLoop, interval: TimeAmount, readTimeout: TimeAmount?, sweepInterval: TimeAmount) {
        self.loop = loop
        self.interval = interval
        self.readTimeout = readTimeout
        self.sweepInterval = sweepInterval
    }

    var timerCount: Int {
        // Read from tests on the loop's thread (EmbeddedEventLoop) or after the fact.
        (beatTimer == nil ? 0 : 1) + (sweepTimer == nil ? 0 : 1)
    }

    func join(_ beacon: HeartbeatBeacon) {
        loop.preconditionInEventLoop()
        guard beacon.slot == nil else { return }
        beacon.slot = members.count
        members.append(beacon)
        if members.count == 1 { startTimers() }
    }

    func leave(_ beacon: HeartbeatBeacon) {
        loop.preconditionInEventLoop()
        guard let slot = beacon.slot else { return }
        beacon.slot = nil
        let last = members.removeLast()
        if slot < members.count {
            members[slot] = last
            last.slot = slot
        }
        if members.isEmpty { stopTimers() }
    }

    private func startTimers() {
        nextBeat = loop.now + interval
        scheduleBeat()
        if readTimeout != nil { scheduleSweep(at: loop.now + sweepInterval) }
    }

    private func stopTimers() {
        beatTimer?.cancel()
        beatTimer = nil
        sweepTimer?.cancel()
        sweepTimer = nil
    }

    private func scheduleBeat() {
        // By deadline, not by delay: the beats do not drift later by the time spent writing them.
        beatTimer = loop.assumeIsolated().scheduleTask(deadline: nextBeat) { [self] in
            beatTimer = nil
            // A beacon may leave (its channel closing) while the round writes: iterate a copy.
            for beacon in members { beacon.beat() }
            guard !members.isEmpty else { return }
            nextBeat = nextBeat + interval
            // After a stall (a blocked loop) the next beat is one interval away, not a burst.
            let now = loop.now
            if nextBeat < now { nextBeat = now + interval }
            scheduleBeat()
        }
    }

    private func scheduleSweep(at deadline: NIODeadline) {
        sweepTimer = loop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            sweepTimer = nil
            guard let timeout = readTimeout else { return }
            let now = loop.now
            for beacon in members { beacon.checkSilence(now: now, timeout: timeout) }
            guard !members.isEmpty else { return }
            scheduleSweep(at: now + sweepInterval)
        }
    }
}

/// One session's heartbeats on the coordinator, driven by its loop's ``HeartbeatClock``.
///
/// - Outbound: once started (``Start``, sent by the session once WELCOME is written, so nothing
///   precedes the handshake), a HEARTBEAT at every beat of the clock.
/// - Read-idle: from the moment the channel is active, when no frame has arrived for the clock's
///   `readTimeout`, fires `IdleStateHandler.IdleStateEvent.read` inbound (``ReadIdleCloser``,
///   after this handler, acts on it), once.
/// - Inbound: with ``Start/onHeartbeat``, each inbound HEARTBEAT is offered to it on the event
///   loop; a heartbeat it takes (returns true) goes no further, so an idle node costs the
///   session's task no wake-up, and its actors no hop, per second. One it refuses is passed on
///   to the session as before (which then refuses it with its error).
///
/// Leaves its clock when the channel goes inactive, is closed or the handler is removed.
public final class HeartbeatBeacon: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = Message
    public typealias InboundOut = Message
    public typealias OutboundIn = Message
    public typealias OutboundOut = Message

    /// The user outbound event that starts the beats; a second one is ignored.
    public struct Start: Sendable {
        /// Takes an inbound HEARTBEAT on the event loop (true) or hands it to the session (false).
        public var onHeartbeat: (@Sendable (Heartbeat) -> Bool)?
        /// Called by the sweep, on the event loop, for a session that showed life since the last
        /// sweep other than by a heartbeat: a frame arrived, or this side stopped reading it
        /// (backpressure; its heartbeats wait behind its frames). At most once per sweep.
        public var onAlive: (@Sendable () -> Void)?
        public init(onHeartbeat: (@Sendable (Heartbeat) -> Bool)? = nil, onAlive: (@Sendable () -> Void)? = nil) {
            self.onHeartbeat = onHeartbeat
            self.onAlive = onAlive
        }
    }

    private let clock: HeartbeatClock
    private var loopClock: LoopClock?
    private var context: ChannelHandlerContext?
    private var started = false
    private var onHeartbeat: (@Sendable (Heartbeat) -> Bool)?
    private var onAlive: (@Sendable () -> Void)?
    /// A frame other than a heartbeat arrived since the last sweep.
    private var framesSinceSweep = false
    private var sequence: UInt64 = 0
    private var silence = SilenceWatch(since: .uptimeNanoseconds(0))
    /// This beacon's index in its loop clock's members, while it is one (kept by ``LoopClock``).
    fileprivate(set) var slot: Int?

    /// A beacon on `clock`, shared by every session of a listener.
    public init(clock: HeartbeatClock) {
        self.clock = clock
    }

    /// A beacon with a clock of its own: beats every `interval`, no read-idle detection.
    public convenience init(interval: TimeAmount) {
        self.init(clock: HeartbeatClock(interval: interval, readTimeout: nil))
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { join(context) }
    }

    public func channelActive(context: ChannelHandlerContext) {
        join(context)
        context.fireChannelActive()
    }

    public func channelInactive(context: ChannelHandlerContext) {
        leave()
        context.fireChannelInactive()
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        leave()
        self.context = nil
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        silence.heard(at: context.eventLoop.now)
        if case .heartbeat(let hb) = unwrapInboundIn(data) {
            if let onHeartbeat, onHeartbeat(hb) { return }
        } else {
            framesSinceSweep = true
        }
        context.fireChannelRead(data)
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        // Bytes came in (a frame still being received counts too); the demand that read them is used up.
        silence.readCycleEnded(at: context.eventLoop.now)
        context.fireChannelReadComplete()
    }

    /// The outbound `read` is this side asking for more: the session's inbound stream holds it back
    /// while its buffer is full (NIOAsyncChannel's backpressure), and lets it through once drained.
    public func read(context: ChannelHandlerContext) {
        silence.readRequested(at: context.eventLoop.now)
        context.read()
    }

    public func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        guard let start = event as? Start else {
            context.triggerUserOutboundEvent(event, promise: promise)
            return
        }
        if !started, context.channel.isActive {
            started = true
            onHeartbeat = start.onHeartbeat
            onAlive = start.onAlive
        }
        promise?.succeed()
    }

    public func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if mode == .all { leave() }
        context.close(mode: mode, promise: promise)
    }

    private func join(_ context: ChannelHandlerContext) {
        guard loopClock == nil else { return }
        silence = SilenceWatch(since: context.eventLoop.now)
        let loopClock = clock.clock(for: context.eventLoop)
        self.loopClock = loopClock
        loopClock.join(self)
    }

    private func leave() {
        loopClock?.leave(self)
        onHeartbeat = nil
        onAlive = nil
    }

    /// The clock's beat: one HEARTBEAT, if started and still open.
    fileprivate func beat() {
        guard started, let context, context.channel.isActive else { return }
        sequence += 1
        context.writeAndFlush(wrapOutboundOut(.heartbeat(Heartbeat(sequence: sequence, activeLeases: 0, framesTotal: 0))), promise: nil)
    }

    /// The clock's sweep: tells ``Start/onAlive`` of life other than heartbeats, and reports a
    /// silence of at least `timeout`, once.
    fileprivate func checkSilence(now: NIODeadline, timeout: TimeAmount) {
        if let onAlive, framesSinceSweep || silence.paused { onAlive() }
        framesSinceSweep = false
        guard let context, silence.check(now: now, timeout: timeout) else { return }
        context.fireUserInboundEventTriggered(IdleStateHandler.IdleStateEvent.read)
    }
}

/// Whether a peer has been silent for too long: the decision of ``HeartbeatBeacon``'s sweep.
///
/// Silence counts only while this side is reading. When the session falls behind (its handler
/// waits on the database, say), NIOAsyncChannel's backpressure holds back the outbound `read`,
/// so the socket is not read and the node's HEARTBEATs wait in the kernel behind its FRAMEs:
/// counting that time declared live nodes lost under load (9,650 heartbeat timeouts at 1,000
/// busy simulated nodes). So a read cycle that ends without a new `read` pauses the count, and
/// the next `read` restarts it: the peer gets a whole timeout of our reading to be heard.
///
/// A channel that has never asked to read (an `EmbeddedChannel` driven by hand) is counted
/// throughout, as before; a real channel asks at once (autoRead) and then on every cycle.
public struct SilenceWatch: Sendable, Equatable {
    /// When the peer was last heard from, or reading last resumed, whichever is later.
    public private(set) var since: NIODeadline
    /// True between a read cycle's end and the next `read`, once reads are seen at all.
    public private(set) var paused = false
    /// Whether the silence was reported (it is, once).
    public private(set) var reported = false
    private var readsSeen = false
    /// Whether a `read` passed since the last cycle's end: then the channel is still asked to read.
    private var requestedSinceCycle = false

    public init(since: NIODeadline) {
        self.since = since
    }

    /// A frame arrived. The socket read it came from used up the read demand made before it.
    public mutating func heard(at now: NIODeadline) {
        since = max(since, now)
        requestedSinceCycle = false
    }

    /// A read cycle ended (bytes arrived, a frame perhaps only in part). NIO reads the socket
    /// again only after a new `read`, unless one came after the cycle's frames: without it,
    /// reading stops until the next ``readRequested(at:)``. (A cycle of a partial frame keeps
    /// the demand that started it, so it goes on counting: the conservative side.)
    public mutating func readCycleEnded(at now: NIODeadline) {
        since = max(since, now)
        if readsSeen && !requestedSinceCycle { paused = true }
        requestedSinceCycle = false
    }

    /// This side asks to read: if it had stopped, the silence is counted from now.
    public mutating func readRequested(at now: NIODeadline) {
        readsSeen = true
        requestedSinceCycle = true
        if paused {
            paused = false
            since = max(since, now)
        }
    }

    /// The sweep at `now`: true (once) when the peer has been silent for `timeout` of our reading.
    public mutating func check(now: NIODeadline, timeout: TimeAmount) -> Bool {
        guard !reported, !paused, now - since >= timeout else { return false }
        reported = true
        return true
    }
}
