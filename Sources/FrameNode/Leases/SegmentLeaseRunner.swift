import FrameCluster
import FrameCore
import FrameMedia
import FrameWire
import Foundation
import Logging
import NIOCore
import Synchronization

/// Runs the segments a coordinator leases to this node, up to `slots` at a
/// time, each on its own thread (FFmpeg's I/O callbacks block).
///
/// For each LEASE it fetches the video bytes it needs with READ (for a
/// LEASE_URL, with ranged GETs of its presigned URL, READ as the fallback), decodes the
/// segment's samples with FrameMedia's ``SegmentDecoder``, streams every
/// encoded image as a FRAME and ends with SEGMENT_DONE, or SEGMENT_FAILED
/// with the error's code (retryable or not). CANCEL or a STALE_EPOCH error
/// about the lease stops the segment's work. A cleanly finished segment's
/// opened decoder is kept for the job's next lease (``DecoderPool``).
///
/// Losing the session does not: a lease keeps running for up to its TTL
/// (from the LEASE) while the agent reconnects. Its READs wait for the
/// reconnect, its results wait in its ``LeaseOutbox``, it is offered in the
/// next HELLO's `heldLeases`, and after WELCOME it either resumes (listed in
/// `resumedLeases`: the outbox resends what the coordinator may have missed)
/// or is abandoned silently. A finished lease stays held for a moment
/// (``lingerAfterFinish``) in case its last messages died with a connection.
public actor SegmentLeaseRunner: LeaseRunner {
    /// One running segment.
    final class Work: Sendable {
        let lease: Lease
        let outbox: LeaseOutbox
        /// The presigned source URL of a LEASE_URL, when it is usable.
        let direct: DirectSource?
        private let cancelled = Atomic<Bool>(false)
        private let done = Atomic<Bool>(false)
        init(lease: Lease, outbox: LeaseOutbox, direct: DirectSource? = nil) {
            self.lease = lease
            self.outbox = outbox
            self.direct = direct
        }
        var isCancelled: Bool { cancelled.load(ordering: .acquiring) }
        func cancel() { cancelled.store(true, ordering: .releasing) }
        var isFinished: Bool { done.load(ordering: .acquiring) }
        func finish() { done.store(true, ordering: .releasing) }
    }

    /// How long a finished lease stays held after its last write, so a
    /// connection that drops right after SEGMENT_DONE can still resend it.
    static let lingerAfterFinish: Duration = .seconds(3)

    private let slots: Int
    private let logger: Logger
    /// Decode threads' writes, segment endings and the lease-TTL timer: children of ``run()``.
    private nonisolated let background = BackgroundWork()
    private let router: ReadRouter
    /// Decoders of finished segments, for the same job's next lease.
    nonisolated let decoders: DecoderPool
    private var send: (@Sendable (Message) async throws -> Void)?
    private(set) var active: [LeaseRef: Work] = [:]
    private var framesTotal: UInt64 = 0
    private var draining = false
    /// Bumped on every detach, so an old TTL timer does not abandon resumed leases.
    private var disconnections: UInt64 = 0
    /// Messages resent after reconnects and leases resumed (for logs and tests).
    private(set) var resentMessages = 0
    private(set) var resumedLeases = 0

    public init(slots: Int, logger: Logger) {
        self.slots = max(1, slots)
        self.logger = logger
        decoders = DecoderPool(capacity: self.slots)
        router = ReadRouter(background: background)
    }

    public nonisolated func run() async {
        await background.run()
    }

    public func attach(send: @escaping @Sendable (Message) async throws -> Void, resumed: [LeaseRef]) async {
        self.send = send
        let keep = Set(resumed)
        for (ref, work) in active where !keep.contains(ref) {
            logger.notice("lease not resumed by the coordinator; abandoning it", metadata: metadata(ref))
            abandon(work)
        }
        for ref in resumed {
            guard let work = active[ref] else { continue }
            resumedLeases += 1
            let before = work.outbox.resentCount
            await work.outbox.resume(send: send)
            router.resend(lease: ref, send: send)
            resentMessages += work.outbox.resentCount - before
            logger.notice("lease resumed after a reconnect", metadata: metadata(ref).merging([
                "resent": "\(work.outbox.resentCount - before)", "finished": "\(work.isFinished)",
            ]) { a, _ in a })
        }
    }

    public func detach() {
        send = nil
        disconnections += 1
        for work in active.values { work.outbox.disconnect() }
        router.connectionLost()
        guard let ttl = active.values.map({ Duration.milliseconds(Int64($0.lease.leaseTTLMillis)) }).min() else { return }
        let mark = disconnections
        background.submit { [weak self] in
            // Cancelled when the node stops: then nothing is left to abandon.
            guard (try? await Task.sleep(for: ttl)) != nil else { return }
            await self?.ttlPassed(since: mark)
        }
    }

    /// Still disconnected a lease TTL after the drop: the coordinator has
    /// given the leases away by now, so stop working on them.
    private func ttlPassed(since mark: UInt64) {
        guard send == nil, disconnections == mark else { return }
        for (ref, work) in active {
            logger.warning("no coordinator within the lease TTL; abandoning the lease", metadata: metadata(ref))
            abandon(work)
        }
    }

    private func abandon(_ work: Work) {
        work.cancel()
        work.outbox.abandon()
        router.failAll(lease: work.lease.lease, FrameFlowError(.cancelled, "lease abandoned"))
        if active[work.lease.lease] === work { active[work.lease.lease] = nil }
    }

    public func drain() { draining = true }

    public func shutDown(grace: Duration) async -> Int {
        draining = true
        let deadline = ContinuousClock.now + grace
        // The actor is free while this sleeps, so finishing segments report in meanwhile.
        while ContinuousClock.now < deadline, !Task.isCancelled,
              active.values.contains(where: { !$0.isFinished || !$0.outbox.isIdle }) {
            try? await Task.sleep(for: .milliseconds(50))
        }
        var handedBack = 0
        for (ref, work) in active where !work.isFinished {
            logger.notice("shutting down: handing the lease back", metadata: metadata(ref))
            abandon(work)
            handedBack += 1
            try? await send?(.segmentFailed(SegmentFailed(
                lease: ref, code: .shuttingDown, retryable: true, message: "node shutting down")))
        }
        return handedBack
    }

    public func heldLeases() -> [LeaseRef] { Array(active.keys) }

    public func figures() -> (activeLeases: Int, framesTotal: UInt64) {
        // Heartbeats are a convenient clock for dropping finished leases
        // whose last messages have had time to arrive.
        let now = ContinuousClock.now
        for (ref, work) in active where work.isFinished && work.outbox.isIdle
            && now - work.outbox.lastWrite > Self.lingerAfterFinish {
            active[ref] = nil
        }
        decoders.closeIdle(now: now)
        return (running, framesTotal)
    }

    private var running: Int { active.values.filter { !$0.isFinished }.count }

    public func handle(_ message: Message) async {
        switch message {
        case .lease(let lease):
            await start(lease, direct: nil)
        case .leaseURL(let leaseURL):
            // An unusable URL (expired already, not http(s)) is not the segment's failure: READ instead.
            switch DirectSource.make(leaseURL) {
            case .success(let direct):
                await start(leaseURL.lease, direct: direct)
            case .failure(let why):
                logger.warning("cannot use the lease's source URL; reading through the coordinator", metadata:
                    metadata(leaseURL.lease.lease).merging(["code": "\(why.code.name)", "error": "\(why.message)"]) { a, _ in a })
                await start(leaseURL.lease, direct: nil)
            }
        case .readData(let data):
            router.deliver(data)
        case .cancel(let cancel):
            if let work = active[cancel.lease] {
                logger.info("segment cancelled by the coordinator", metadata: metadata(cancel.lease))
                abandon(work)
            }
            // The job is cancelled or failed: its parked decoders will not be needed.
            decoders.closeIdle(jobID: cancel.lease.jobID)
        case .error(let error):
            if let ref = error.lease, let work = active[ref] {
                logger.warning("coordinator refused a result; stopping the segment", metadata: metadata(ref))
                work.cancel()
                work.outbox.abandon()
                router.failAll(lease: ref, FrameFlowError(error.errorCode ?? .staleEpoch, error.message))
                active[ref] = nil
            }
        default:
            break
        }
    }

    private func start(_ lease: Lease, direct: DirectSource?) async {
        guard let send else { return }
        guard !draining, running < slots, active[lease.lease] == nil else {
            let why = draining ? "node is draining" : "no free slot"
            try? await send(.segmentFailed(SegmentFailed(lease: lease.lease, code: .shuttingDown, retryable: true, message: why)))
            return
        }
        let work = Work(lease: lease, outbox: LeaseOutbox(send: send, background: background), direct: direct)
        active[lease.lease] = work
        logger.info("segment leased", metadata: metadata(lease.lease).merging([
            "samples": "\(lease.segment.sampleCount)", "first_sample": "\(lease.segment.firstSample)",
            "source": "\(direct.map { "direct \($0.reader.redactedURL)" } ?? "coordinator")",
        ]) { a, _ in a })
        let router = self.router
        let decoders = self.decoders
        let logger = self.logger
        let background = self.background
        let thread = Thread { [weak self] in
            let outcome = Self.run(work, router: router, decoders: decoders, logger: logger)
            let runner = self
            background.submit { await runner?.finished(work, outcome) }
        }
        thread.name = "segment \(lease.lease.segment)"
        thread.stackSize = 8 << 20
        thread.start()
    }

    private func finished(_ work: Work, _ outcome: Outcome) {
        // Kept (held) until its last messages have surely arrived: see figures().
        work.finish()
        if work.isCancelled, active[work.lease.lease] === work { active[work.lease.lease] = nil }
        framesTotal += UInt64(outcome.frames)
        var meta = metadata(work.lease.lease)
        meta["frames"] = "\(outcome.frames)"
        meta["outcome"] = "\(outcome.summary)"
        logger.info("segment finished", metadata: meta)
    }

    struct Outcome: Sendable {
        var frames: Int
        var summary: String
    }

    /// The body of a segment's thread.
    private static func run(_ work: Work, router: ReadRouter, decoders: DecoderPool, logger: Logger) -> Outcome {
        let lease = work.lease
        let outbox = work.outbox
        let started = ContinuousClock.now
        var sent = 0
        do {
            let open: DecoderPool.OpenDecoder
            if let parked = decoders.take(jobID: lease.lease.jobID), parked.source.size == Int64(lease.sourceSize) {
                parked.source.rebind(to: lease.lease, outbox: outbox, direct: work.direct)
                open = parked
            } else {
                let source = RemoteByteSource(size: Int64(lease.sourceSize), lease: lease.lease, router: router, outbox: outbox,
                                              direct: work.direct, logger: logger)
                let decoder = try SegmentDecoder(source: source, formatHint: lease.formatHint.isEmpty ? nil : lease.formatHint)
                open = DecoderPool.OpenDecoder(decoder: decoder, source: source)
            }
            let stats = try open.decoder.run(lease.segment, options: lease.options, isCancelled: { work.isCancelled }) { frame in
                var data = ByteBuffer()
                data.writeBytes(frame.data)
                try outbox.deliver(.frame(Frame(
                    lease: lease.lease, sampleIndex: frame.sampleIndex, pts: frame.pts, seconds: frame.seconds,
                    format: frame.format, width: UInt32(frame.width), height: UInt32(frame.height), data: data)))
                sent += 1
            }
            guard !work.isCancelled else { return Outcome(frames: sent, summary: "cancelled") }
            let elapsed = ContinuousClock.now - started
            // Read before parking: once parked, another slot's lease may take the source and rebind it.
            let bytesRead = UInt64(open.source.bytesFetched)
            let bytesDirect = open.source.bytesFetchedDirect
            // The slot is free, and the decoder parked for the job's next segment, before the
            // coordinator hears so: it answers SEGMENT_DONE with the next LEASE at once.
            decoders.park(open)
            work.finish()
            try outbox.deliver(.segmentDone(SegmentDone(
                lease: lease.lease, frameCount: UInt32(stats.emittedFrames), decodedFrames: UInt32(stats.decodedFrames),
                bytesRead: bytesRead, elapsedMillis: UInt32(clamping: elapsed.milliseconds))))
            return Outcome(frames: sent, summary: "done (\(stats.decodedFrames) decoded, \(bytesRead) bytes read, \(bytesDirect) of them from the store)")
        } catch {
            if work.isCancelled { return Outcome(frames: sent, summary: "cancelled") }
            let failure = error.asFrameFlowError
            work.finish()
            try? outbox.deliver(.segmentFailed(SegmentFailed(
                lease: lease.lease, code: failure.code, retryable: failure.code.isRetryable, message: failure.message)))
            return Outcome(frames: sent, summary: "failed \(failure.code.name)")
        }
    }

    private func metadata(_ ref: LeaseRef) -> Logger.Metadata {
        ["job": "\(ref.jobID.uuidString.lowercased())", "segment": "\(ref.segment)", "epoch": "\(ref.epoch)"]
    }
}
