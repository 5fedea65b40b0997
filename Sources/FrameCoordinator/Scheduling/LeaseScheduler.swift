import FrameAPI
import FrameObjectStore
import FrameCluster
import FrameCore
import FrameStore
import FrameWire
import Foundation
import Logging
import Synchronization
import NIOCore
import NIOPosix
import ServiceLifecycle

/// Hands segments to nodes and takes their results: the coordinator's side
/// of the lease protocol.
///
/// The decisions are ``LeaseBook``'s (a value: nodes, slots, held leases,
/// grace, progress deadlines, pending renewals); this actor is the thin
/// driver that performs them: store calls, messages to nodes, spool writes
/// (on the thread pool, never on the cooperative pool) and assembly.
///
/// Leases are granted by the store's single claim statement whenever a node
/// has a free slot (once its WELCOME is written, after each result, when a
/// job arrives, and on a periodic tick that also runs the reaper). An idle
/// cluster costs one statement per tick: a round of claims starts only when
/// the store has claimable work, and stops when it has no more. The
/// scheduler answers READ from the upload (range-checked by ``ReadRange``,
/// read on the thread pool), checks each FRAME (``FrameCheck``) before it
/// spools it under a deterministic name, checks every result against the
/// current lease (epoch and node: the fence), takes back leases that make no
/// progress (``ProgressWatch``), and when a job's last segment is accepted
/// assembles its ZIP and marks it COMPLETED.
///
/// Heartbeats only mark a node for renewal; every `renewInterval` one
/// statement renews the leases of all of them.
///
/// A node that leaves loses its leases at once (heartbeat timeout, GOODBYE,
/// revoke, fatal error), except when its connection merely dropped (EOF or
/// reset): then its leases are held for `resumeGrace` so that a node back
/// from a network blip resumes them (WELCOME `resumedLeases`) instead of
/// redoing them; see proto-spec/leases.md, "Resuming after a blip".
///
/// It is a `Service`: ``run()`` runs the ticks, the renewals, and every piece
/// of background work (grace timers, result writes that may outlast a
/// database outage) as children of one task group, which shutdown waits for.
public actor LeaseScheduler: NodeWorkHandler, Service {
    typealias Book = LeaseBook<ContinuousClock.Instant>
    typealias Key = Book.Key

    private let leases: LeaseStore
    private let jobs: JobStore
    private let layout: StorageLayout
    /// Where an assembled ZIP is made durable before the job is COMPLETED (the disk, or a bucket).
    private let archives: any ArchiveStore
    /// With `storage.kind: s3`: each done segment becomes a slice object, and archives are
    /// assembled from the slices (docs/distributed-assembly.md) instead of by libzip from the spool.
    private let slices: SliceArchiver?
    /// How long an assembly claim lasts without renewal (it is renewed after every part).
    private let assemblyClaimTTL: Duration = .seconds(60)
    private let retention: TimeInterval
    private let logger: Logger
    private var book: Book
    /// How to reach each node's current session (the book knows which session is current).
    private var senders: [String: @Sendable (Message) async -> Void] = [:]
    /// Where READs are answered from: the upload on disk (the default) or the object store.
    private let sources: any SourceStore
    /// Leases whose READ this coordinator could not serve because the object store was unreachable
    /// (with when): their SEGMENT_FAILED is the outage's, not the segment's, and is requeued
    /// uncharged. The coordinator's own record, so a node cannot claim an outage to dodge attempts.
    private var storeOutages: [LeaseRef: ContinuousClock.Instant] = [:]
    private let threadPool: NIOThreadPool
    private var assembling: Set<UUID> = []
    /// Jobs whose spool was dropped (cancelled, failed, assembled), most recent last, bounded: a
    /// frame whose write was already on the thread pool can land after the drop (the recursive
    /// removal then fails on the new file and leaves the folder), so such a write drops it again.
    private var droppedSpools: (order: [UUID], set: Set<UUID>) = ([], [])
    /// This coordinator's identity: recorded on the leases it grants and on the assembly claims it
    /// takes (`jobs.assembly_claimed_by`, one claim for both archive paths).
    public nonisolated let coordinatorID: String
    /// Where the round of claims starts: rotated, so no node is always last.
    private var dispatchCursor = 0
    /// This coordinator's counters (leases, requeues, fences, frames, claim latency).
    public nonisolated let metrics: CoordinatorMetrics
    /// How long a result's database write is retried while the database is down.
    private let outagePatience: Duration = .seconds(300)
    private let renewInterval: Duration
    private let tickInterval: Duration
    /// Told of every job status change and segment completion (the seam for server push).
    private let observer: (any JobChangeObserver)?
    /// `storage.s3.node_reads: direct`: LEASE_URL for nodes that speak it; nil: plain LEASE.
    private let sourceURLs: SourceURLSigner?
    /// The protocol version of each node's current session (what its LEASE may be).
    private var protocolVersions: [String: UInt16] = [:]
    /// Jobs other coordinators ended, from the change feed (``JobChangeFeed``): handled by
    /// ``jobEndedElsewhere(_:)`` in ``run()``'s task group.
    private nonisolated let peerEndings: AsyncStream<JobRecord>?
    /// Nodes that sent a heartbeat since the last renewal flush, noted off this actor
    /// (``heartbeat(from:)``) and handed to the book by ``flushRenewals()``.
    private nonisolated let heartbeatsNoted = Mutex<Set<String>>([])
    /// Background work for ``run()``'s task group.
    private nonisolated let work: AsyncStream<@Sendable () async -> Void>
    private nonisolated let workInput: AsyncStream<@Sendable () async -> Void>.Continuation

    public init(
        database: Database, layout: StorageLayout, leaseTTL: Duration, retentionDays: Int,
        resumeGrace: Duration = .zero, progressDeadline: ProgressDeadline = ProgressDeadline(),
        logger: Logger, metrics: CoordinatorMetrics = CoordinatorMetrics(), threadPool: NIOThreadPool = .singleton,
        renewInterval: Duration = .milliseconds(250), tickInterval: Duration = .seconds(1),
        observer: (any JobChangeObserver)? = nil, archives: (any ArchiveStore)? = nil, sources: (any SourceStore)? = nil,
        slices: SliceArchiver? = nil, coordinatorID: String = CoordinatorIdentity.generate(), sourceURLs: SourceURLSigner? = nil,
        peerEndings: AsyncStream<JobRecord>? = nil
    ) {
        self.peerEndings = peerEndings
        self.sourceURLs = sourceURLs
        self.archives = archives ?? DirectoryArchiveStore(resultsDirectory: layout.results)
        self.slices = slices
        self.coordinatorID = coordinatorID
        self.book = Book(progressDeadline: progressDeadline, resumeGrace: resumeGrace)
        self.sources = sources ?? LocalSourceStore(layout: layout, threadPool: threadPool)
        self.threadPool = threadPool
        self.metrics = metrics
        self.leases = LeaseStore(database: database, policy: LeasePolicy(ttl: leaseTTL), coordinator: coordinatorID)
        self.jobs = JobStore(database: database)
        self.layout = layout
        self.retention = TimeInterval(retentionDays) * 86_400
        self.logger = logger
        self.renewInterval = renewInterval
        self.tickInterval = tickInterval
        self.observer = observer
        (work, workInput) = AsyncStream.makeStream(of: (@Sendable () async -> Void).self)
    }

    // MARK: service

    /// Runs the ticks, the lease renewals and the background work until
    /// graceful shutdown (or cancellation); returns once every child is done.
    public nonisolated func run() async throws {
        let work = self.work
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                group.addTask { await self.runTicks() }
                group.addTask { await self.runRenewals() }
                if let peerEndings = self.peerEndings {
                    group.addTask { for await job in peerEndings { await self.jobEndedElsewhere(job) } }
                }
                for await job in work { group.addTask { await job() } }
                // Shutdown: timers and retry back-offs end now; writes in flight finish.
                group.cancelAll()
            }
        } onGracefulShutdown: {
            self.workInput.finish()
        }
    }

    /// Background work, run as a child of ``run()``'s task group (never a stray `Task`).
    private nonisolated func spawn(_ job: @escaping @Sendable () async -> Void) {
        workInput.yield(job)
    }

    /// Runs the periodic tick (reaper, dispatch of retries and new jobs) until cancelled.
    public func runTicks() async {
        var tick = 0
        while !Task.isCancelled {
            // First thing after a start, then every few ticks: jobs finished but never assembled.
            if tick % 5 == 0 { await assembleFinishedJobs() }
            tick += 1
            try? await Task.sleep(for: tickInterval)
            if Task.isCancelled { break }
            await reap()
            await takeBackStalled()
            await dispatchAll()
        }
    }

    /// Renews, every `renewInterval`, the leases of every node that sent a heartbeat since.
    private func runRenewals() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: renewInterval)
            await flushRenewals()
        }
    }

    /// One statement renews the leases of every node that heartbeated since the last flush.
    func flushRenewals() async {
        for name in heartbeatsNoted.withLock({ noted in defer { noted = [] }; return noted }) { book.heartbeat(name) }
        let names = book.takeRenewals()
        guard !names.isEmpty else { return }
        do {
            try await leases.renew(nodes: names)
            metrics.renewalFlushes.increment()
        } catch {
            logger.warning("cannot renew leases", metadata: ["nodes": "\(names.count)", "error": "\(error)"])
        }
    }

    /// Assembles every job whose segments are all done but which is not
    /// COMPLETED: the coordinator was killed, or the database was down,
    /// between the last SEGMENT_DONE and the end of assembly.
    public func assembleFinishedJobs() async {
        do {
            for id in try await jobs.awaitingAssembly() where !assembling.contains(id) {
                logger.notice("assembling a job whose segments were all done", metadata: ["job": "\(id.lowercased)"])
                await assemble(id)
            }
        } catch {
            logger.warning("cannot look for jobs awaiting assembly", metadata: ["error": "\(error)"])
        }
    }

    // MARK: NodeWorkHandler

    public func nodeJoined(
        name: String, session: UInt64, slots: Int, labels: [String: String], heldLeases: [LeaseRef],
        protocolVersion: UInt16, send: @escaping @Sendable (Message) async -> Void
    ) async -> [LeaseRef] {
        protocolVersions[name] = protocolVersion
        return await nodeJoined(name: name, session: session, slots: slots, labels: labels, heldLeases: heldLeases, send: send)
    }

    public func nodeJoined(
        name: String, session: UInt64, slots: Int, labels: [String: String], heldLeases: [LeaseRef],
        send: @escaping @Sendable (Message) async -> Void
    ) async -> [LeaseRef] {
        // Known but not yet eligible: nothing is sent to it, and it gets no new
        // lease, until its session says WELCOME is out (nodeReady).
        book.join(name, session: session, slots: slots)
        senders[name] = send
        // Leases the node kept working on through a blip (or a coordinator
        // restart) continue under the same epoch when the store still has
        // them for this node; everything else it held is handed back now
        // instead of waiting for the reaper. The node was not at fault, so
        // nothing is charged.
        var resumed: [GrantedLease] = []
        do {
            let outcome = try await leases.resume(node: name, held: heldLeases)
            resumed = outcome.resumed
            metrics.requeued(outcome.released.released.count, .nodeReconnected)
            if !outcome.released.isEmpty {
                logger.notice("requeued leases of an earlier session", metadata: [
                    "node": "\(name)", "leases": "\(outcome.released.released.count)",
                ])
            }
        } catch {
            logger.error("cannot resume leases", metadata: ["node": "\(name)", "error": "\(error)"])
        }
        if !heldLeases.isEmpty {
            logger.notice("node offered leases held through a disconnect", metadata: [
                "node": "\(name)", "offered": "\(heldLeases.count)", "resumed": "\(resumed.count)",
            ])
        }
        // The session may have been replaced while the store answered.
        guard book.session(of: name) == session else { return [] }
        book.forgetUnresumed(of: name, keeping: Set(resumed.map(\.ref)))
        var confirmed: [LeaseRef] = []
        for grant in resumed {
            // Never more than `slots`, however many the node offered: the rest go back to
            // pending (uncharged) and the node abandons them, not being told to resume them.
            guard let lease = book.resume(held(grant, node: name), session: session, at: .now) else {
                _ = try? await leases.giveBack(grant.ref, node: name, reason: "resumed beyond the node's slots")
                continue
            }
            confirmed.append(grant.ref)
            logger.notice("lease resumed", metadata: meta(grant.ref, node: name, ["frames_kept": "\(lease.timestamps.count)"]))
        }
        await makeSpoolDirectories(Set(confirmed.map(\.jobID)))
        return confirmed
    }

    public func nodeReady(name: String, session: UInt64) async {
        guard book.ready(name, session: session) else { return }
        await dispatch(name)
    }

    private func held(_ grant: GrantedLease, node: String) -> Book.Held {
        Book.Held(
            ref: grant.ref, node: node, spec: grant.spec, format: grant.output.format,
            source: layout.input(grant.ref.jobID, ext: grant.sourceExt), sourceSize: grant.sourceSizeBytes,
            expectation: FrameExpectation(
                options: grant.output, sourceWidth: grant.sourceWidth, sourceHeight: grant.sourceHeight,
                rotation: grant.sourceRotation))
    }

    /// Sends to a node whose WELCOME is out; anything else is dropped (it cannot be for a lease the node knows).
    private func send(_ message: Message, to node: String) async {
        guard book.isReady(node), let send = senders[node] else { return }
        await send(message)
    }

    public func nodeLeft(name: String, session: UInt64, reason: String, mayResume: Bool) async {
        switch book.leave(name, session: session, mayResume: mayResume) {
        case .ignore:
            // An older session ending after its node reconnected must not take
            // the new session's leases.
            return
        case .holdForGrace(let grace):
            senders[name] = nil
            // The connection merely dropped: the node may be back in a moment.
            // Keep its leases (and the frames already received) for the grace.
            logger.notice("holding a dropped node's leases for it to resume", metadata: [
                "node": "\(name)", "grace_ms": "\(grace.milliseconds)", "reason": "\(reason)",
            ])
            spawn {
                // Cancelled at shutdown: the leases then stay in the store, for the node or the reaper.
                guard (try? await Task.sleep(for: grace)) != nil else { return }
                await self.graceEnded(name: name, session: session, reason: reason)
            }
        case .takeBack:
            senders[name] = nil
            await takeBack(name: name, reason: reason)
        }
    }

    /// The grace of a dropped node ran out without it coming back.
    private func graceEnded(name: String, session: UInt64, reason: String) async {
        guard book.graceEnded(name, session: session) else { return }
        await takeBack(name: name, reason: "\(reason); not back within the resume grace")
    }

    /// Requeues every lease of a lost node, charging a node loss.
    private func takeBack(name: String, reason: String) async {
        book.takeBack(name)
        do {
            let release = try await leases.requeue(node: name, reason: reason)
            metrics.requeued(release.released.count, .nodeLost)
            if !release.isEmpty {
                logger.warning("requeued the leases of a lost node", metadata: [
                    "node": "\(name)", "leases": "\(release.released.count)", "reason": "\(reason)",
                ])
            }
            await handleFailedJobs(release.failedJobs)
        } catch {
            logger.error("cannot requeue leases", metadata: ["node": "\(name)", "error": "\(error)"])
        }
        await dispatchAll()
    }

    public func nodeDraining(name: String) async {
        book.drain(name)
    }

    /// Notes the node for the next renewal flush (one statement for all nodes). Called on the
    /// session's event loop: no hop onto this actor per heartbeat; the flush takes the notes.
    public nonisolated func heartbeat(from node: String) {
        metrics.heartbeats.increment()
        heartbeatsNoted.withLock { _ = $0.insert(node) }
    }

    /// Renews like a heartbeat (without counting one): under load the node's heartbeats wait
    /// unread behind its frames, and its leases must not expire for this side's delay.
    public nonisolated func stillWorking(_ node: String) {
        heartbeatsNoted.withLock { _ = $0.insert(node) }
    }

    public func receive(_ message: Message, from node: String) async {
        switch message {
        case .read(let read): await serveRead(read, node: node)
        case .frame(let frame): await acceptFrame(frame, node: node)
        case .segmentDone(let done): await acceptDone(done, node: node)
        case .segmentFailed(let failed): await acceptFailure(failed, node: node)
        default: break
        }
    }

    /// A new job was committed: offer its segments to idle nodes now.
    public func jobArrived() async { await dispatchAll() }

    /// Cancels a job: its live leases get CANCEL, its spool is removed.
    public func cancel(jobID: UUID) async throws -> CancelOutcome {
        let outcome = try await jobs.cancel(id: jobID)
        for held in outcome.cancelledLeases {
            book.ended(held.ref)
            await send(.cancel(Cancel(lease: held.ref, reason: .cancelled)), to: held.node)
        }
        await dropJobFiles(jobID)
        observer?.jobChanged(JobChange(jobID: jobID, status: outcome.job.status))
        await dispatchAll()
        return outcome
    }

    /// Another coordinator ended job `job` (a cancel through its API, or a failure there): its
    /// record, as the change feed re-read it. This coordinator does what its own cancel does for
    /// the leases its nodes hold (CANCEL, slots freed, the local spool dropped) without writing
    /// the job again: the peer's transaction already ended every lease in the store.
    public func jobEndedElsewhere(_ job: JobRecord) async {
        guard let ended = book.jobEndedElsewhere(job.id, status: job.status, code: job.errorCode) else { return }
        if !ended.leases.isEmpty {
            logger.notice("a job ended on another coordinator: stopping its leases here", metadata: [
                "job": "\(job.id.lowercased)", "status": "\(job.status.rawValue)", "leases": "\(ended.leases.count)",
                "code": "\(ended.reason.name)",
            ])
        }
        for held in ended.leases {
            await send(.cancel(Cancel(lease: held.ref, reason: ended.reason)), to: held.node)
        }
        await dropJobFiles(job.id)
        await dispatchAll()
    }

    // MARK: dispatch

    /// Offers work to every node with a free slot, starting from a rotating
    /// node; only when the store has claimable work, and only until it runs out.
    private func dispatchAll() async {
        let names = book.readyNodes.filter { book.free($0) > 0 }
        guard !names.isEmpty else { return }
        guard (try? await leases.hasClaimable()) ?? true else { return }
        dispatchCursor = (dispatchCursor + 1) % names.count
        for name in names[dispatchCursor...] + names[..<dispatchCursor] {
            guard let (asked, got) = await dispatch(name) else { continue }
            // Fewer than asked: the queue may be empty (or the rest is not for this node).
            if got < asked, !((try? await leases.hasClaimable()) ?? true) { return }
        }
    }

    /// Claims for `name` as many leases as it has free slots; nil when it had none.
    @discardableResult
    private func dispatch(_ name: String) async -> (asked: Int, got: Int)? {
        guard var reservation = book.reserve(name) else { return nil }
        let asked = reservation.count
        let granted: [GrantedLease]
        let claimStarted = ContinuousClock.now
        do {
            granted = try await leases.claim(node: name, limit: reservation.count)
            metrics.recordClaim(ContinuousClock.now - claimStarted)
            // A first grant moves a job from QUEUED to PROCESSING.
            for job in Set(granted.map(\.ref.jobID)) { observer?.jobChanged(JobChange(jobID: job, status: .processing)) }
        } catch {
            book.finish(&reservation)
            logger.error("lease claim failed", metadata: ["node": "\(name)", "error": "\(error)"])
            return (asked, 0)
        }
        var accepted: [GrantedLease] = []
        for grant in granted {
            // The session may have ended, or been replaced, while we claimed:
            // then the reservation holds nothing and the grant goes back, uncharged.
            guard book.granted(held(grant, node: name), with: &reservation, at: .now) else {
                _ = try? await leases.giveBack(grant.ref, node: name, reason: "node left during claim")
                continue
            }
            accepted.append(grant)
        }
        book.finish(&reservation)
        // Created once per grant, not per frame: FRAME handling is the hot path.
        await makeSpoolDirectories(Set(accepted.map(\.ref.jobID)))
        for grant in accepted {
            metrics.segmentsLeased.increment()
            logger.info("segment leased", metadata: meta(grant.ref, node: name, ["attempt": "\(grant.attempt)"]))
            // Only to the session the lease was claimed for: a newer one never heard of it.
            guard book.session(of: name) == reservation.session, let send = senders[name] else { continue }
            let lease = Lease(
                lease: grant.ref, leaseTTLMillis: UInt32(clamping: leases.policy.ttl.milliseconds),
                sourceSize: UInt64(clamping: grant.sourceSizeBytes), formatHint: grant.sourceExt,
                segment: grant.spec, options: grant.output)
            await send(sourceURLs?.message(for: lease, sourceExt: grant.sourceExt, nodeVersion: protocolVersions[name] ?? 1)
                ?? .lease(lease))
        }
        return (asked, granted.count)
    }

    private func makeSpoolDirectories(_ jobIDs: Set<UUID>) async {
        guard !jobIDs.isEmpty else { return }
        let urls = jobIDs.map { layout.spoolDirectory($0) }
        _ = try? await threadPool.runIfActive {
            for url in urls { try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true) }
        }
    }

    // MARK: results

    private func refuseStale(_ ref: LeaseRef, node: String, _ what: String) async {
        metrics.segmentsFenced.increment()
        logger.notice("refused a stale result", metadata: meta(ref, node: node, ["what": "\(what)"]))
        await send(.error(ErrorMessage(
            code: .staleEpoch, fatal: false, message: "\(what) for a lease this node no longer holds", lease: ref)), to: node)
    }

    private func serveRead(_ read: Read, node: String) async {
        guard let lease = book.current(read.lease, node: node) else {
            await send(.readData(ReadData(requestID: read.requestID, offset: read.offset, error: .staleEpoch)), to: node)
            return
        }
        switch ReadRange.of(offset: read.offset, length: read.length, sourceSize: lease.sourceSize) {
        case .outOfRange(let why):
            logger.notice("refused a READ outside the source", metadata: meta(read.lease, node: node, ["why": "\(why)"]))
            await send(.readData(ReadData(requestID: read.requestID, offset: read.offset, error: .readOutOfRange)), to: node)
        case .bytes(let offset, let count):
            book.progressed(read.lease, at: .now)
            do {
                let data = count == 0 ? ByteBuffer() : try await sources.read(
                    lease: read.lease, job: read.lease.jobID, ext: lease.source.pathExtension, size: lease.sourceSize,
                    offset: offset, count: count)
                // The lease may have moved on while the read ran: then the node gets nothing of it.
                guard book.current(read.lease, node: node) != nil else {
                    await send(.readData(ReadData(requestID: read.requestID, offset: read.offset, error: .staleEpoch)), to: node)
                    return
                }
                await send(.readData(ReadData(requestID: read.requestID, offset: read.offset, data: data)), to: node)
            } catch {
                logger.error("cannot read upload", metadata: meta(read.lease, node: node, ["error": "\(error)"]))
                // An unreachable store is retryable without charge (the node reports it back in SEGMENT_FAILED).
                let code: ErrorCode = error.asFrameFlowError.code == .objectStoreUnavailable ? .objectStoreUnavailable : .ioError
                if code == .objectStoreUnavailable {
                    let now = ContinuousClock.now
                    storeOutages = storeOutages.filter { now - $0.value < .seconds(600) }
                    storeOutages[read.lease] = now
                }
                await send(.readData(ReadData(requestID: read.requestID, offset: read.offset, error: code)), to: node)
            }
        }
    }

    private func acceptFrame(_ frame: Frame, node: String) async {
        let format: ImageFormat
        switch book.frame(frame, node: node) {
        case .stale:
            await refuseStale(frame.lease, node: node, "FRAME")
            return
        case .outsideSegment:
            await send(.error(ErrorMessage(
                code: .frameCountMismatch, fatal: false,
                message: "sample \(frame.sampleIndex) is outside this segment", lease: frame.lease)), to: node)
            return
        case .invalid(let why):
            await refuse(frame.lease, node: node, code: .invalidFrame, reason: why)
            return
        case .spool(let f):
            format = f
        }
        let url = layout.spoolFrame(frame.lease.jobID, sample: frame.sampleIndex, format: format)
        let data = frame.data
        do {
            try await threadPool.runIfActive {
                let tmp = url.appendingPathExtension("part")
                try Data(data.readableBytesView).write(to: tmp)
                // rename: a reader never sees half a frame, and a resent frame replaces itself.
                guard rename(tmp.path, url.path) == 0 else {
                    throw FrameFlowError(.ioError, "cannot rename \(tmp.lastPathComponent): errno \(errno)")
                }
            }
        } catch {
            // A frame that raced its job's cancel or completion finds the spool gone: expected, not an error.
            if droppedSpools.set.contains(frame.lease.jobID) {
                logger.debug("frame arrived after its job's spool was dropped", metadata: meta(frame.lease, node: node))
            } else {
                logger.error("cannot spool a frame", metadata: meta(frame.lease, node: node, ["error": "\(error)"]))
            }
            return
        }
        if droppedSpools.set.contains(frame.lease.jobID) {
            await removeSpool(frame.lease.jobID)
            return
        }
        // The lease may have ended while the write ran: then the frame does not count.
        if book.frameSpooled(frame, node: node, at: .now) {
            metrics.framesReceived.increment()
            metrics.frameBytes.increment(by: data.readableBytes)
        }
    }

    private func acceptDone(_ done: SegmentDone, node: String) async {
        switch book.done(done, node: node) {
        case .stale:
            await refuseStale(done.lease, node: node, "SEGMENT_DONE")
        case .lostInBlip:
            // Frames in flight when the connection dropped were lost with
            // it: not the node's fault, so redo the segment without charge.
            logger.notice("a resumed lease lost frames in the blip; requeued", metadata: meta(done.lease, node: node, [
                "expected": "\(done.frameCount)",
            ]))
            _ = try? await leases.giveBack(done.lease, node: node, reason: "frames lost in a connection drop")
            await dispatchAll()
        case .mismatch(let message):
            await fail(done.lease, node: node, code: .frameCountMismatch, message: message)
        case .record(let timestamps):
            if let slices {
                // The frames become the segment's slice object first; the upload may wait out a
                // store outage, so it runs in the background like the database write.
                spawn { await self.recordSliceDone(done, node: node, timestamps: timestamps, slices: slices) }
                return
            }
            let url = layout.spoolTimestamps(done.lease.jobID, segment: done.lease.segment)
            do {
                try await threadPool.runIfActive {
                    try JSONEncoder().encode(timestamps).write(to: url, options: .atomic)
                }
            } catch {
                await fail(done.lease, node: node, code: .ioError, message: "cannot record the segment: \(error)")
                return
            }
            // The frames are on disk; the database write may outlast an outage, so it must
            // not hold up the node's session (its reader would stall into a heartbeat timeout).
            spawn { await self.recordDone(done, node: node) }
        }
    }

    /// Storage kind s3: writes the segment's slice, then records the segment done with its
    /// manifest row. While the store is unreachable the lease stays held (the node's heartbeats
    /// renew it; the frames stay spooled) and the upload is retried, for `outagePatience`; then,
    /// or on any other failure, the lease is handed back uncharged and the segment is redone.
    private func recordSliceDone(_ done: SegmentDone, node: String, timestamps: [UInt32: Double], slices: SliceArchiver) async {
        let ref = done.lease
        let giveUp = ContinuousClock.now + outagePatience
        var delay = Duration.milliseconds(250)
        while true {
            do {
                guard let job = try await jobs.get(id: ref.jobID), job.status.isSchedulable else { return }
                let format = job.output.format
                let layout = self.layout
                let slice = try await slices.writeSlice(ref, total: Int(job.frameCount), format: format, samples: timestamps) {
                    layout.spoolFrame(ref.jobID, sample: $0, format: format)
                }
                if await recordDone(done, node: node, slice: slice) {
                    // Recorded: the frames live in the slice now, the spool copies can go.
                    let urls = timestamps.keys.map { layout.spoolFrame(ref.jobID, sample: $0, format: format) }
                    _ = try? await threadPool.runIfActive { for url in urls { try? FileManager.default.removeItem(at: url) } }
                }
                return
            } catch where Self.isOutage(error) && ContinuousClock.now < giveUp && !Task.isCancelled {
                // Taken back meanwhile (the node left): the segment is someone else's now.
                if (try? await leases.isCurrent(ref, node: node)) == false { return }
                logger.warning("cannot write the segment's slice; will retry", metadata: meta(ref, node: node, [
                    "error": "\(error)", "retry_in_ms": "\(delay.milliseconds)",
                ]))
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(5))
            } catch {
                logger.error("cannot write the segment's slice; the segment will be redone", metadata: meta(ref, node: node, [
                    "error": "\(error)",
                ]))
                _ = try? await leases.giveBack(ref, node: node, reason: "cannot write the segment's slice: \(error)")
                await dispatchAll()
                return
            }
        }
    }

    /// A store or database that cannot be reached now: worth waiting for rather than redoing work.
    private static func isOutage(_ error: any Error) -> Bool {
        if let s3 = error as? S3Error, case .unavailable = s3 { return true }
        if let store = error as? StoreError, case .unavailable = store { return true }
        return false
    }

    /// Records the segment done (with its slice's manifest row, storage kind s3); true when accepted.
    @discardableResult
    private func recordDone(_ done: SegmentDone, node: String, slice: SegmentSliceRecord? = nil) async -> Bool {
        var accepted = false
        do {
            switch try await whileDatabaseDown(done.lease, node: node, { try await self.leases.complete(done.lease, node: node, slice: slice) }) {
            case .accepted(let progress):
                accepted = true
                logger.info("segment done", metadata: meta(done.lease, node: node, [
                    "frames": "\(done.frameCount)", "decoded": "\(done.decodedFrames)",
                    "node_elapsed_ms": "\(done.elapsedMillis)", "bytes_read": "\(done.bytesRead)",
                    "job_frames_done": "\(progress.framesDone)/\(progress.frameCount)",
                ]))
                if let wrong = progress.contradicted {
                    logger.warning("a node's non-retryable verdict was contradicted by another node", metadata: meta(
                        done.lease, node: node, ["contradicted_node": "\(wrong)"]))
                }
                observer?.jobChanged(JobChange(
                    jobID: done.lease.jobID, status: .processing, framesDone: progress.framesDone,
                    frameCount: progress.frameCount))
                if progress.allSegmentsDone { await assemble(done.lease.jobID) }
            case .stale:
                // Never referenced: the accepted epoch's slice is the only one assembly reads.
                if let slice { await slices?.delete(keys: [slice.key]) }
                await refuseStale(done.lease, node: node, "SEGMENT_DONE")
            }
        } catch {
            logger.error("cannot record a finished segment", metadata: meta(done.lease, node: node, ["error": "\(error)"]))
        }
        await dispatch(node)
        return accepted
    }

    private func acceptFailure(_ failed: SegmentFailed, node: String) async {
        guard book.end(failed.lease, node: node) else {
            await refuseStale(failed.lease, node: node, "SEGMENT_FAILED")
            return
        }
        var code = failed.errorCode ?? .internalError
        // A node may only make a failure final with a code that is final by nature.
        if !failed.retryable && code.isRetryable { code = .decodeFailed }
        if failed.retryable && !code.isRetryable { code = .internalError }
        // However the node's decoder put it (IO_ERROR, a demuxer error), a segment whose READ the
        // store could not serve failed for the outage; and only such a segment did.
        if storeOutages.removeValue(forKey: failed.lease) != nil {
            code = .objectStoreUnavailable
        } else if code == .objectStoreUnavailable {
            code = .ioError
        }
        let message = failed.message
        let verdict = code
        if verdict == .shuttingDown {
            // A hand-back comes just before the node's GOODBYE, whose take-back charges every
            // lease the store still shows as held: record it in session order, before that runs.
            await fail(failed.lease, node: node, code: verdict, message: message)
            return
        }
        spawn {
            await self.fail(failed.lease, node: node, code: verdict, message: message)
            await self.dispatch(node)
        }
    }

    private func fail(_ ref: LeaseRef, node: String, code: ErrorCode, message: String) async {
        logger.warning("segment failed", metadata: meta(ref, node: node, [
            "code": "\(code.name)", "message": "\(message)",
        ]))
        do {
            switch try await whileDatabaseDown(ref, node: node, { try await self.leases.fail(ref, node: node, code: code, message: message) }) {
            case .retrying(let notBefore, let attempts, let max):
                metrics.requeued(1, .segmentFailed)
                logger.info("segment will be retried", metadata: meta(ref, node: node, [
                    "attempts": "\(attempts)/\(max)", "not_before": "\(notBefore)",
                ]))
            case .awaitingConfirmation(let verdict):
                logger.notice("a non-retryable verdict goes to another node for confirmation", metadata: meta(ref, node: node, [
                    "code": "\(verdict.name)",
                ]))
            case .jobFailed(let failure):
                if let failure { await handleFailedJobs([failure]) }
            case .stale:
                await refuseStale(ref, node: node, "SEGMENT_FAILED")
            }
        } catch {
            logger.error("cannot record a segment failure", metadata: meta(ref, node: node, ["error": "\(error)"]))
        }
    }

    /// Runs a result's database write, retrying while the database is
    /// unreachable (up to `outagePatience`, or until shutdown): a result lost
    /// here would leave its lease held, and renewed by the node's heartbeats,
    /// forever. A write that committed but whose answer was lost comes back
    /// `.stale` on retry; the periodic assembly check covers a job it completed.
    private func whileDatabaseDown<T: Sendable>(
        _ ref: LeaseRef, node: String, _ write: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        let giveUp = ContinuousClock.now + outagePatience
        var delay = Duration.milliseconds(250)
        while true {
            do {
                return try await write()
            } catch StoreError.unavailable(let reason) where ContinuousClock.now < giveUp && !Task.isCancelled {
                logger.warning("database unavailable; will retry recording a result", metadata: meta(ref, node: node, [
                    "error": "\(reason)", "retry_in_ms": "\(delay.milliseconds)",
                ]))
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(2))
            }
        }
    }

    private func handleFailedJobs(_ failures: [JobFailure]) async {
        for failure in failures {
            logger.error("job failed", metadata: [
                "job": "\(failure.jobID.lowercased)", "code": "\(failure.code.name)", "message": "\(failure.message)",
            ])
            for held in failure.cancelledLeases {
                book.ended(held.ref)
                await send(.cancel(Cancel(lease: held.ref, reason: failure.code)), to: held.node)
            }
            await dropJobFiles(failure.jobID, keepUpload: true)
            observer?.jobChanged(JobChange(jobID: failure.jobID, status: .failed, code: failure.code))
        }
    }

    private func reap() async {
        do {
            let release = try await leases.expireOverdue()
            metrics.requeued(release.released.filter { $0.newState == .pending }.count, .leaseExpired)
            for released in release.released {
                let held = released.lease
                book.ended(held.ref, keepFrames: true)
                logger.warning("lease expired", metadata: meta(held.ref, node: held.node))
                await send(.cancel(Cancel(lease: held.ref, reason: .heartbeatTimeout)), to: held.node)
            }
            await handleFailedJobs(release.failedJobs)
        } catch {
            logger.error("reaper failed", metadata: ["error": "\(error)"])
        }
    }

    /// Leases renewed by heartbeats but without a READ, FRAME or SEGMENT_DONE
    /// within their progress deadline: taken back and charged to the node.
    private func takeBackStalled() async {
        for stalled in book.stalled(at: .now) {
            await refuse(stalled.ref, node: stalled.node, code: .progressTimeout,
                         reason: "no READ, FRAME or SEGMENT_DONE for \(stalled.limit.milliseconds) ms")
        }
    }

    /// Ends a lease because of what its node did (an invalid frame, no progress):
    /// the node is told to stop (CANCEL with `code`), and the segment fails on
    /// that node with `code` (a retryable failure: it goes elsewhere, and the
    /// node's failure tally and blocklisting follow the failure policy).
    private func refuse(_ ref: LeaseRef, node: String, code: ErrorCode, reason: String) async {
        guard book.end(ref, node: node) else { return }
        logger.warning("took a lease back from its node", metadata: meta(ref, node: node, [
            "code": "\(code.name)", "reason": "\(reason)",
        ]))
        await send(.cancel(Cancel(lease: ref, reason: code)), to: node)
        await fail(ref, node: node, code: code, message: reason)
        await dispatchAll()
    }

    // MARK: assembly

    private func assemble(_ jobID: UUID) async {
        guard !assembling.contains(jobID) else { return }
        assembling.insert(jobID)
        defer { assembling.remove(jobID) }
        book.forgetJob(jobID)
        if let slices {
            await assembleFromSlices(jobID, slices)
            return
        }
        do {
            // Already assembled (by the periodic check racing a SEGMENT_DONE) or no longer wanted.
            guard let job = try await jobs.get(id: jobID), job.status == .processing else { return }
            // Exactly one coordinator assembles a job (the same claim as the slice path's): it is
            // taken over only from a claimer that stopped renewing it or whose liveness row expired.
            let me = coordinatorID
            guard let claim = try await jobs.claimAssembly(id: jobID, claimer: me, ttl: assemblyClaimTTL) else {
                logger.debug("another coordinator is assembling the job", metadata: ["job": "\(jobID.lowercased)"])
                return
            }
            if let previous = claim.tookOverFrom {
                logger.notice("took over the assembly of a job from a claimer that stopped", metadata: [
                    "job": "\(jobID.lowercased)", "previous": "\(previous)", "coordinator": "\(me)",
                ])
            }
            let segments = try await jobs.segments(jobID: jobID)
            let assembler = JobAssembler(layout: layout)
            let started = ContinuousClock.now
            // A ZIP only ever appears by rename of a finished archive, so one that exists is
            // complete: an earlier assembly got that far before the crash or the outage.
            let existing = layout.result(jobID)
            let (threadPool, archives) = (self.threadPool, self.archives)
            let zip = try await renewingClaim(jobID) {
                // libzip and the file system block: keep them off the cooperative pool, which runs the sessions.
                let zip = try await threadPool.runIfActive {
                    FileManager.default.fileExists(atPath: existing.path) ? existing : try assembler.assemble(job: job, segments: segments)
                }
                // COMPLETED only once the archive is where downloads will find it (for a bucket: the
                // multipart upload completed); the local ZIP stays until then, so a retry re-publishes it.
                try await archives.publish(job: jobID, file: zip)
                return zip
            }
            _ = try await jobs.completeAssembly(id: jobID, claimer: me, expiresAt: Date().addingTimeInterval(retention))
            await archives.released(job: jobID)
            logger.info("job completed", metadata: [
                "job": "\(jobID.lowercased)", "frames": "\(job.frameCount)", "zip": "\(zip.path)",
                "assembly_ms": "\((ContinuousClock.now - started).milliseconds)",
            ])
            observer?.jobChanged(JobChange(jobID: jobID, status: .completed, framesDone: Int64(job.frameCount),
                                           frameCount: Int64(job.frameCount)))
        } catch StoreError.invalidState(let why) {
            // The claim was taken over (this coordinator stalled past its TTL) or the job was
            // cancelled meanwhile: whoever holds the claim now completes it.
            logger.notice("assembly not recorded", metadata: ["job": "\(jobID.lowercased)", "why": "\(why)"])
        } catch StoreError.unavailable(let reason) {
            // Not the job's fault: the periodic check assembles it once the database is back.
            logger.warning("assembly postponed: database unavailable", metadata: [
                "job": "\(jobID.lowercased)", "error": "\(reason)",
            ])
        } catch let error as S3Error {
            // Not the job's fault either (a store that is down, or refuses our credentials until an
            // operator fixes them): the ZIP stays on disk and the periodic check publishes it again.
            logger.warning("assembly postponed: the archive could not be stored", metadata: [
                "job": "\(jobID.lowercased)", "code": "\(error.code.name)", "error": "\(error)",
            ])
        } catch {
            let failure = error.asFrameFlowError
            logger.error("assembly failed", metadata: ["job": "\(jobID.lowercased)", "error": "\(failure)"])
            let code = failure.code == .internalError ? ErrorCode.archiveFailed : failure.code
            _ = try? await jobs.fail(id: jobID, code: code, message: "cannot assemble the archive: \(failure.message)")
            observer?.jobChanged(JobChange(jobID: jobID, status: .failed, code: code))
        }
    }

    /// Runs `work` (the local path's libzip assembly and publication, which has no hook of its
    /// own) while a child task renews this coordinator's assembly claim every third of its TTL,
    /// so that a long assembly by a live coordinator is not taken over.
    private func renewingClaim<T: Sendable>(_ jobID: UUID, _ work: @escaping @Sendable () async throws -> T) async throws -> T {
        let (jobs, me, ttl, logger) = (self.jobs, coordinatorID, assemblyClaimTTL, self.logger)
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: ttl / 3)
                    guard !Task.isCancelled else { break }
                    // A lost claim is detected by completeAssembly; the renewal only keeps a live one.
                    do { _ = try await jobs.renewAssemblyClaim(id: jobID, claimer: me, ttl: ttl) } catch {
                        logger.warning("cannot renew the assembly claim", metadata: ["job": "\(jobID.lowercased)", "error": "\(error)"])
                    }
                }
                return nil
            }
            group.addTask { try await work() }
            defer { group.cancelAll() }
            while let result = try await group.next() {
                if let result { return result }
            }
            throw CancellationError()
        }
    }

    /// Storage kind s3: the archive from the job's segment slices, by whichever coordinator wins
    /// the assembly claim in PostgreSQL (others, and this one while another holds it, skip the
    /// job; a claim that stops being renewed is taken over, and its upload aborted). COMPLETED
    /// only once CompleteMultipartUpload returned; the slices are deleted afterwards.
    private func assembleFromSlices(_ jobID: UUID, _ slices: SliceArchiver) async {
        let me = coordinatorID
        let ttl = assemblyClaimTTL
        let jobs = self.jobs
        do {
            guard let claim = try await jobs.claimAssembly(id: jobID, claimer: me, ttl: ttl) else { return }
            if let previous = claim.tookOverFrom {
                logger.notice("took over the assembly of a job from a claimer that stopped", metadata: [
                    "job": "\(jobID.lowercased)", "previous": "\(previous)", "coordinator": "\(me)",
                ])
            }
            if let abandoned = claim.abandonedUploadID { await slices.abandon(job: jobID, uploadID: abandoned) }
            guard let job = try await jobs.get(id: jobID), job.status == .processing else { return }
            let records = try await jobs.segmentSlices(jobID: jobID)
            let size = try await slices.assemble(job: job, slices: records) { uploadID in
                try await jobs.renewAssemblyClaim(id: jobID, claimer: me, ttl: ttl, uploadID: uploadID)
            }
            _ = try await jobs.completeAssembly(id: jobID, claimer: me, expiresAt: Date().addingTimeInterval(retention))
            await slices.deleteSlices(job: jobID)
            await dropJobFiles(jobID)
            logger.info("job completed", metadata: [
                "job": "\(jobID.lowercased)", "frames": "\(job.frameCount)", "zip_bytes": "\(size)", "coordinator": "\(me)",
            ])
            observer?.jobChanged(JobChange(jobID: jobID, status: .completed, framesDone: Int64(job.frameCount),
                                           frameCount: Int64(job.frameCount)))
        } catch is SliceArchiver.ClaimLost {
            logger.notice("assembly stopped: another coordinator took its claim over", metadata: ["job": "\(jobID.lowercased)"])
        } catch StoreError.invalidState(let why) {
            // The claim was taken over between CompleteMultipartUpload and COMPLETED: the other
            // claimer writes the same archive and completes the job.
            logger.notice("assembly not recorded", metadata: ["job": "\(jobID.lowercased)", "why": "\(why)"])
        } catch where Self.isOutage(error) || (error as? S3Error).map({ $0.code == .objectStoreRejected }) == true {
            // Not the job's fault: give the claim up so that the periodic check (here or on any
            // coordinator) assembles it once the store or the database is back.
            try? await jobs.releaseAssemblyClaim(id: jobID, claimer: me)
            logger.warning("assembly postponed: the object store or the database is unavailable", metadata: [
                "job": "\(jobID.lowercased)", "error": "\(error)",
            ])
        } catch {
            let failure = error.asFrameFlowError
            logger.error("assembly failed", metadata: ["job": "\(jobID.lowercased)", "error": "\(failure)"])
            let code = failure.code == .internalError ? ErrorCode.archiveFailed : failure.code
            _ = try? await jobs.fail(id: jobID, code: code, message: "cannot assemble the archive: \(failure.message)")
            observer?.jobChanged(JobChange(jobID: jobID, status: .failed, code: code))
        }
    }

    private func dropJobFiles(_ jobID: UUID, keepUpload: Bool = true) async {
        book.forgetJob(jobID)
        if droppedSpools.set.insert(jobID).inserted {
            droppedSpools.order.append(jobID)
            if droppedSpools.order.count > 4096 { droppedSpools.set.remove(droppedSpools.order.removeFirst()) }
        }
        let spool = layout.spoolDirectory(jobID)
        let upload = layout.uploadDirectory(jobID)
        _ = try? await threadPool.runIfActive {
            try? FileManager.default.removeItem(at: spool)
            if !keepUpload { try? FileManager.default.removeItem(at: upload) }
        }
    }

    private func removeSpool(_ jobID: UUID) async {
        let spool = layout.spoolDirectory(jobID)
        _ = try? await threadPool.runIfActive { try? FileManager.default.removeItem(at: spool) }
    }

    private func meta(_ ref: LeaseRef, node: String, _ extra: Logger.Metadata = [:]) -> Logger.Metadata {
        let ids: Logger.Metadata = [
            "job": "\(ref.jobID.lowercased)", "segment": "\(ref.segment)", "epoch": "\(ref.epoch)", "node": "\(node)",
        ]
        return ids.merging(extra) { id, _ in id }
    }
}

/// A job's status or progress changed: what the scheduler tells a
/// ``JobChangeObserver`` (e.g. the web app's server push).
public struct JobChange: Sendable, Hashable {
    public var jobID: UUID
    public var status: JobStatus
    public var framesDone: Int64?
    public var frameCount: Int64?
    /// Why the job failed, for `.failed`.
    public var code: ErrorCode?

    public init(jobID: UUID, status: JobStatus, framesDone: Int64? = nil, frameCount: Int64? = nil, code: ErrorCode? = nil) {
        self.jobID = jobID
        self.status = status
        self.framesDone = framesDone
        self.frameCount = frameCount
        self.code = code
    }
}

/// Told by the scheduler of every segment completion and job status change
/// it makes (COMPLETED, FAILED, CANCELLED). Called on the scheduler's
/// actor: an implementation must only hand the change on (e.g. into an
/// `AsyncStream`), never block.
public protocol JobChangeObserver: Sendable {
    func jobChanged(_ change: JobChange)
}
