import FrameCluster
import FrameCore
import FrameStore
import FrameWire
import Foundation
import Logging
import NIOCore
import NIOPosix

/// Hands segments to nodes and takes their results: the coordinator's side
/// of the lease protocol.
///
/// Leases are granted by the store's single claim statement whenever a node
/// has a free slot (once its WELCOME is written, after each result, when a
/// job arrives, and on a periodic tick that also runs the reaper); the
/// ``SlotLedger`` is the one place that counts slots, so no path can give a
/// node more leases than it announced. The scheduler answers READ from the
/// upload (range-checked by ``ReadRange``, read on the thread pool), checks
/// each FRAME (``FrameCheck``) before it spools it under a deterministic
/// name, checks every result against the current lease (epoch and node: the
/// fence), takes back leases that make no progress (``ProgressWatch``), and
/// when a job's last segment is accepted assembles its ZIP and marks it
/// COMPLETED.
///
/// A node that leaves loses its leases at once (heartbeat timeout, GOODBYE,
/// revoke, fatal error), except when its connection merely dropped (EOF or
/// reset): then its leases are held for `resumeGrace` so that a node back
/// from a network blip resumes them (WELCOME `resumedLeases`) instead of
/// redoing them; see proto-spec/leases.md, "Resuming after a blip".
public actor LeaseScheduler: NodeWorkHandler {
    struct NodeEntry {
        var session: UInt64
        var send: @Sendable (Message) async -> Void
        var draining: Bool
        /// WELCOME has been written: messages may go to the node from now on.
        var ready = false
    }

    struct ActiveLease {
        var ref: LeaseRef
        var node: String
        var spec: SegmentSpec
        var format: ImageFormat
        var source: URL
        /// The source's size as the LEASE announced it: READs are checked against it.
        var sourceSize: Int64
        /// What this lease's FRAMEs must be.
        var expectation: FrameExpectation
        var timestamps: [UInt32: Double] = [:]
        /// Resumed after a reconnect: frames lost in the blip are not the node's fault.
        var resumed = false
    }

    struct Key: Hashable {
        var job: UUID
        var segment: UInt32
    }

    private let leases: LeaseStore
    private let jobs: JobStore
    private let layout: StorageLayout
    private let retention: TimeInterval
    private let logger: Logger
    private var nodes: [String: NodeEntry] = [:]
    private var active: [Key: ActiveLease] = [:]
    /// Slots per node: every lease in `active` held by a live session is held here too.
    private var ledger = SlotLedger()
    /// Progress deadlines of the leases in `active`.
    private var progress: ProgressWatch<ContinuousClock.Instant>
    private let reader: SourceReader
    private var assembling: Set<UUID> = []
    /// Nodes whose connection dropped, by name: the session that ended, while its grace runs.
    private var detached: [String: UInt64] = [:]
    /// Frames received under leases that were requeued, kept until the segment is granted
    /// again, so the node that lost it can still resume it without resending them.
    private var released: [Key: ActiveLease] = [:]
    private let resumeGrace: Duration
    /// This coordinator's counters (leases, requeues, fences, frames, claim latency).
    public nonisolated let metrics: CoordinatorMetrics
    /// How long a result's database write is retried while the database is down.
    private let outagePatience: Duration = .seconds(300)
    /// Told the id of every job whose status or progress this scheduler changed (server push).
    private let onJobChange: @Sendable (UUID) -> Void

    public init(
        database: Database, layout: StorageLayout, leaseTTL: Duration, retentionDays: Int,
        resumeGrace: Duration = .zero, progressDeadline: ProgressDeadline = ProgressDeadline(),
        logger: Logger, metrics: CoordinatorMetrics = CoordinatorMetrics(), threadPool: NIOThreadPool = .singleton,
        onJobChange: @escaping @Sendable (UUID) -> Void = { _ in }
    ) {
        self.onJobChange = onJobChange
        self.resumeGrace = resumeGrace
        self.progress = ProgressWatch(rule: progressDeadline)
        self.reader = SourceReader(threadPool: threadPool)
        self.metrics = metrics
        self.leases = LeaseStore(database: database, policy: LeasePolicy(ttl: leaseTTL))
        self.jobs = JobStore(database: database)
        self.layout = layout
        self.retention = TimeInterval(retentionDays) * 86_400
        self.logger = logger
    }

    /// Runs the periodic tick (reaper, dispatch of retries and new jobs) until cancelled.
    public func runTicks(every interval: Duration = .seconds(1)) async {
        var tick = 0
        while !Task.isCancelled {
            // First thing after a start, then every few ticks: jobs finished but never assembled.
            if tick % 5 == 0 { await assembleFinishedJobs() }
            tick += 1
            try? await Task.sleep(for: interval)
            await reap()
            await takeBackStalled()
            await dispatchAll()
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
        send: @escaping @Sendable (Message) async -> Void
    ) async -> [LeaseRef] {
        // Known but not yet eligible: nothing is sent to it, and it gets no new
        // lease, until its session says WELCOME is out (nodeReady).
        nodes[name] = NodeEntry(session: session, send: send, draining: false)
        ledger.join(name, session: session, slots: slots)
        detached[name] = nil
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
        let kept = Set(resumed.map(\.ref))
        for (key, lease) in active where lease.node == name && !kept.contains(lease.ref) { drop(key) }
        var confirmed: [LeaseRef] = []
        for grant in resumed {
            let key = Key(job: grant.ref.jobID, segment: grant.ref.segment)
            // Never more than `slots`, however many the node offered: the rest go back to
            // pending (uncharged) and the node abandons them, not being told to resume them.
            guard ledger.holdResumed(grant.ref, on: name, session: session) else {
                _ = try? await leases.giveBack(grant.ref, node: name, reason: "resumed beyond the node's slots")
                continue
            }
            var lease = active[key].flatMap { $0.ref == grant.ref ? $0 : nil } ?? released.removeValue(forKey: key).flatMap { $0.ref == grant.ref ? $0 : nil }
                ?? makeActive(grant, node: name)
            lease.node = name
            lease.resumed = true
            active[key] = lease
            progress.start(grant.ref, spec: grant.spec, at: .now)
            confirmed.append(grant.ref)
            try? FileManager.default.createDirectory(
                at: layout.spoolDirectory(grant.ref.jobID), withIntermediateDirectories: true)
            logger.notice("lease resumed", metadata: meta(grant.ref, node: name, ["frames_kept": "\(lease.timestamps.count)"]))
        }
        return confirmed
    }

    public func nodeReady(name: String, session: UInt64) async {
        guard nodes[name]?.session == session else { return }
        nodes[name]?.ready = true
        ledger.makeEligible(name, session: session)
        await dispatch(name)
    }

    private func makeActive(_ grant: GrantedLease, node: String) -> ActiveLease {
        ActiveLease(
            ref: grant.ref, node: node, spec: grant.spec, format: grant.output.format,
            source: layout.input(grant.ref.jobID, ext: grant.sourceExt), sourceSize: grant.sourceSizeBytes,
            expectation: FrameExpectation(
                options: grant.output, sourceWidth: grant.sourceWidth, sourceHeight: grant.sourceHeight,
                rotation: grant.sourceRotation))
    }

    /// Removes a lease from `active` and from the slot and progress books: the one way a lease stops being held.
    @discardableResult
    private func drop(_ key: Key) -> ActiveLease? {
        guard let lease = active.removeValue(forKey: key) else { return nil }
        ledger.release(lease.ref, from: lease.node)
        progress.stop(lease.ref)
        return lease
    }

    /// Sends to a node whose WELCOME is out; anything else is dropped (it cannot be for a lease the node knows).
    private func send(_ message: Message, to node: String) async {
        guard let entry = nodes[node], entry.ready else { return }
        await entry.send(message)
    }

    public func nodeLeft(name: String, session: UInt64, reason: String, mayResume: Bool) async {
        // An older session ending after its node reconnected must not take
        // the new session's leases.
        guard nodes[name]?.session == session else { return }
        nodes[name] = nil
        ledger.leave(name, session: session)
        if mayResume && resumeGrace > .zero && active.values.contains(where: { $0.node == name }) {
            // The connection merely dropped: the node may be back in a moment.
            // Keep its leases (and the frames already received) for the grace.
            detached[name] = session
            logger.notice("holding a dropped node's leases for it to resume", metadata: [
                "node": "\(name)", "grace_ms": "\(resumeGrace.milliseconds)", "reason": "\(reason)",
            ])
            let grace = resumeGrace
            Task {
                try? await Task.sleep(for: grace)
                await self.graceEnded(name: name, session: session, reason: reason)
            }
            return
        }
        await takeBack(name: name, reason: reason)
    }

    /// The grace of a dropped node ran out without it coming back.
    private func graceEnded(name: String, session: UInt64, reason: String) async {
        guard detached[name] == session else { return }
        detached[name] = nil
        await takeBack(name: name, reason: "\(reason); not back within the resume grace")
    }

    /// Requeues every lease of a lost node, charging a node loss.
    private func takeBack(name: String, reason: String) async {
        for (key, lease) in active where lease.node == name {
            drop(key)
            released[key] = lease
        }
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
        nodes[name]?.draining = true
        ledger.makeIneligible(name)
    }

    public func heartbeat(from node: String) async {
        _ = try? await leases.renew(node: node)
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
            drop(Key(job: held.ref.jobID, segment: held.ref.segment))
            await send(.cancel(Cancel(lease: held.ref, reason: .cancelled)), to: held.node)
        }
        dropJobFiles(jobID)
        onJobChange(jobID)
        await dispatchAll()
        return outcome
    }

    // MARK: dispatch

    private func dispatchAll() async {
        for name in nodes.keys { await dispatch(name) }
    }

    private func dispatch(_ name: String) async {
        guard let node = nodes[name], node.ready, !node.draining, var reservation = ledger.reserve(name) else { return }
        let granted: [GrantedLease]
        let claimStarted = ContinuousClock.now
        do {
            granted = try await leases.claim(node: name, limit: reservation.count)
            metrics.recordClaim(ContinuousClock.now - claimStarted)
            // A first grant moves a job from QUEUED to PROCESSING.
            for job in Set(granted.map(\.ref.jobID)) { onJobChange(job) }
        } catch {
            ledger.finish(&reservation)
            logger.error("lease claim failed", metadata: ["node": "\(name)", "error": "\(error)"])
            return
        }
        for grant in granted {
            // The session may have ended, or been replaced, while we claimed or sent:
            // then the reservation holds nothing and the grant goes back, uncharged.
            guard let entry = nodes[name], entry.session == reservation.session,
                  ledger.hold(grant.ref, with: &reservation)
            else {
                _ = try? await leases.giveBack(grant.ref, node: name, reason: "node left during claim")
                continue
            }
            let key = Key(job: grant.ref.jobID, segment: grant.ref.segment)
            released[key] = nil
            // Created once per grant, not per frame: FRAME handling is the hot path.
            try? FileManager.default.createDirectory(
                at: layout.spoolDirectory(grant.ref.jobID), withIntermediateDirectories: true)
            active[key] = makeActive(grant, node: name)
            progress.start(grant.ref, spec: grant.spec, at: .now)
            metrics.segmentsLeased.increment()
            logger.info("segment leased", metadata: meta(grant.ref, node: name, ["attempt": "\(grant.attempt)"]))
            await entry.send(.lease(Lease(
                lease: grant.ref, leaseTTLMillis: UInt32(clamping: leases.policy.ttl.milliseconds),
                sourceSize: UInt64(clamping: grant.sourceSizeBytes), formatHint: grant.sourceExt,
                segment: grant.spec, options: grant.output)))
        }
        ledger.finish(&reservation)
    }

    // MARK: results

    private func current(_ ref: LeaseRef, node: String) -> ActiveLease? {
        guard let lease = active[Key(job: ref.jobID, segment: ref.segment)], lease.ref == ref, lease.node == node else {
            return nil
        }
        return lease
    }

    private func refuseStale(_ ref: LeaseRef, node: String, _ what: String) async {
        metrics.segmentsFenced.increment()
        logger.notice("refused a stale result", metadata: meta(ref, node: node, ["what": "\(what)"]))
        await send(.error(ErrorMessage(
            code: .staleEpoch, fatal: false, message: "\(what) for a lease this node no longer holds", lease: ref)), to: node)
    }

    private func serveRead(_ read: Read, node: String) async {
        guard let lease = current(read.lease, node: node) else {
            await send(.readData(ReadData(requestID: read.requestID, offset: read.offset, error: .staleEpoch)), to: node)
            return
        }
        switch ReadRange.of(offset: read.offset, length: read.length, sourceSize: lease.sourceSize) {
        case .outOfRange(let why):
            logger.notice("refused a READ outside the source", metadata: meta(read.lease, node: node, ["why": "\(why)"]))
            await send(.readData(ReadData(requestID: read.requestID, offset: read.offset, error: .readOutOfRange)), to: node)
        case .bytes(let offset, let count):
            progress.progressed(read.lease, at: .now)
            do {
                let data = count == 0 ? ByteBuffer() : try await reader.read(lease.source, offset: offset, count: count)
                // The lease may have moved on while the read ran: then the node gets nothing of it.
                guard current(read.lease, node: node) != nil else {
                    await send(.readData(ReadData(requestID: read.requestID, offset: read.offset, error: .staleEpoch)), to: node)
                    return
                }
                await send(.readData(ReadData(requestID: read.requestID, offset: read.offset, data: data)), to: node)
            } catch {
                logger.error("cannot read upload", metadata: meta(read.lease, node: node, ["error": "\(error)"]))
                await send(.readData(ReadData(requestID: read.requestID, offset: read.offset, error: .ioError)), to: node)
            }
        }
    }

    private func acceptFrame(_ frame: Frame, node: String) async {
        guard var lease = current(frame.lease, node: node) else {
            await refuseStale(frame.lease, node: node, "FRAME")
            return
        }
        let spec = lease.spec
        // Widened: firstSample + sampleCount must not trap on a plan near UInt32.max.
        guard frame.sampleIndex >= spec.firstSample,
              UInt64(frame.sampleIndex) < UInt64(spec.firstSample) + UInt64(spec.sampleCount) else {
            await send(.error(ErrorMessage(
                code: .frameCountMismatch, fatal: false,
                message: "sample \(frame.sampleIndex) is outside this segment", lease: frame.lease)), to: node)
            return
        }
        if case .invalid(let why) = FrameCheck.check(frame, against: lease.expectation) {
            await refuse(frame.lease, node: node, code: .invalidFrame, reason: why)
            return
        }
        let url = layout.spoolFrame(frame.lease.jobID, sample: frame.sampleIndex, format: lease.format)
        do {
            let tmp = url.appendingPathExtension("part")
            try Data(frame.data.readableBytesView).write(to: tmp)
            // rename: a reader never sees half a frame, and a resent frame replaces itself.
            guard rename(tmp.path, url.path) == 0 else { throw FrameFlowError(.ioError, "rename failed: \(errno)") }
            lease.timestamps[frame.sampleIndex] = frame.seconds
            metrics.framesReceived.increment()
            // Still current after the write? (Only a suspension could change it; there is none yet.)
            active[Key(job: frame.lease.jobID, segment: frame.lease.segment)] = lease
            progress.progressed(frame.lease, at: .now)
        } catch {
            logger.error("cannot spool a frame", metadata: meta(frame.lease, node: node, ["error": "\(error)"]))
        }
    }

    private func acceptDone(_ done: SegmentDone, node: String) async {
        guard let lease = current(done.lease, node: node) else {
            await refuseStale(done.lease, node: node, "SEGMENT_DONE")
            return
        }
        let key = Key(job: done.lease.jobID, segment: done.lease.segment)
        let expected = lease.spec.sampleCount
        guard done.frameCount == expected, lease.timestamps.count == Int(expected) else {
            drop(key)
            if lease.resumed && done.frameCount == expected {
                // Frames in flight when the connection dropped were lost with
                // it: not the node's fault, so redo the segment without charge.
                logger.notice("a resumed lease lost frames in the blip; requeued", metadata: meta(done.lease, node: node, [
                    "received": "\(lease.timestamps.count)", "expected": "\(expected)",
                ]))
                _ = try? await leases.giveBack(done.lease, node: node, reason: "frames lost in a connection drop")
                await dispatchAll()
                return
            }
            let message = "segment reported \(done.frameCount) frames and sent \(lease.timestamps.count); the plan has \(expected)"
            await fail(done.lease, node: node, code: .frameCountMismatch, message: message)
            return
        }
        do {
            let json = try JSONEncoder().encode(lease.timestamps)
            try json.write(to: layout.spoolTimestamps(done.lease.jobID, segment: done.lease.segment), options: .atomic)
        } catch {
            drop(key)
            await fail(done.lease, node: node, code: .ioError, message: "cannot record the segment: \(error)")
            return
        }
        drop(key)
        // The frames are on disk; the database write may outlast an outage, so it must
        // not hold up the node's session (its reader would stall into a heartbeat timeout).
        Task { await self.recordDone(done, node: node) }
    }

    private func recordDone(_ done: SegmentDone, node: String) async {
        do {
            switch try await whileDatabaseDown(done.lease, node: node, { try await self.leases.complete(done.lease, node: node) }) {
            case .accepted(let progress):
                logger.info("segment done", metadata: meta(done.lease, node: node, [
                    "frames": "\(done.frameCount)", "decoded": "\(done.decodedFrames)",
                    "node_elapsed_ms": "\(done.elapsedMillis)", "bytes_read": "\(done.bytesRead)",
                    "job_frames_done": "\(progress.framesDone)/\(progress.frameCount)",
                ]))
                if let wrong = progress.contradicted {
                    logger.warning("a node's non-retryable verdict was contradicted by another node", metadata: meta(
                        done.lease, node: node, ["contradicted_node": "\(wrong)"]))
                }
                onJobChange(done.lease.jobID)
                if progress.allSegmentsDone { await assemble(done.lease.jobID) }
            case .stale:
                await refuseStale(done.lease, node: node, "SEGMENT_DONE")
            }
        } catch {
            logger.error("cannot record a finished segment", metadata: meta(done.lease, node: node, ["error": "\(error)"]))
        }
        await dispatch(node)
    }

    private func acceptFailure(_ failed: SegmentFailed, node: String) async {
        guard current(failed.lease, node: node) != nil else {
            await refuseStale(failed.lease, node: node, "SEGMENT_FAILED")
            return
        }
        drop(Key(job: failed.lease.jobID, segment: failed.lease.segment))
        var code = failed.errorCode ?? .internalError
        // A node may only make a failure final with a code that is final by nature.
        if !failed.retryable && code.isRetryable { code = .decodeFailed }
        if failed.retryable && !code.isRetryable { code = .internalError }
        let message = failed.message
        Task {
            await self.fail(failed.lease, node: node, code: code, message: message)
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
    /// unreachable (up to `outagePatience`): a result lost here would leave
    /// its lease held, and renewed by the node's heartbeats, forever. A write
    /// that committed but whose answer was lost comes back `.stale` on retry;
    /// the periodic assembly check covers a job it completed.
    private func whileDatabaseDown<T: Sendable>(
        _ ref: LeaseRef, node: String, _ write: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        let giveUp = ContinuousClock.now + outagePatience
        var delay = Duration.milliseconds(250)
        while true {
            do {
                return try await write()
            } catch StoreError.unavailable(let reason) where ContinuousClock.now < giveUp {
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
                drop(Key(job: held.ref.jobID, segment: held.ref.segment))
                await send(.cancel(Cancel(lease: held.ref, reason: failure.code)), to: held.node)
            }
            dropJobFiles(failure.jobID, keepUpload: true)
            onJobChange(failure.jobID)
        }
    }

    private func reap() async {
        do {
            let release = try await leases.expireOverdue()
            metrics.requeued(release.released.filter { $0.newState == .pending }.count, .leaseExpired)
            for released in release.released {
                let held = released.lease
                let key = Key(job: held.ref.jobID, segment: held.ref.segment)
                if let lease = drop(key) { self.released[key] = lease }
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
        for ref in progress.overdue(at: .now) {
            guard let lease = active[Key(job: ref.jobID, segment: ref.segment)], lease.ref == ref else {
                progress.stop(ref)
                continue
            }
            let limit = progress.rule.limit(for: lease.spec)
            await refuse(ref, node: lease.node, code: .progressTimeout,
                         reason: "no READ, FRAME or SEGMENT_DONE for \(limit.milliseconds) ms")
        }
    }

    /// Ends a lease because of what its node did (an invalid frame, no progress):
    /// the node is told to stop (CANCEL with `code`), and the segment fails on
    /// that node with `code` (a retryable failure: it goes elsewhere, and the
    /// node's failure tally and blocklisting follow the failure policy).
    private func refuse(_ ref: LeaseRef, node: String, code: ErrorCode, reason: String) async {
        guard drop(Key(job: ref.jobID, segment: ref.segment)) != nil else { return }
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
        for key in released.keys where key.job == jobID { released[key] = nil }
        do {
            // Already assembled (by the periodic check racing a SEGMENT_DONE) or no longer wanted.
            guard let job = try await jobs.get(id: jobID), job.status == .processing else { return }
            let segments = try await jobs.segments(jobID: jobID)
            let assembler = JobAssembler(layout: layout)
            let started = ContinuousClock.now
            // A ZIP only ever appears by rename of a finished archive, so one that exists is
            // complete: an earlier assembly got that far before the crash or the outage.
            let existing = layout.result(jobID)
            let zip = FileManager.default.fileExists(atPath: existing.path)
                ? existing
                // libzip blocks: keep it off the cooperative pool, which runs the sessions.
                : try await NIOThreadPool.singleton.runIfActive { try assembler.assemble(job: job, segments: segments) }
            _ = try await jobs.markCompleted(id: jobID, expiresAt: Date().addingTimeInterval(retention))
            onJobChange(jobID)
            logger.info("job completed", metadata: [
                "job": "\(jobID.lowercased)", "frames": "\(job.frameCount)", "zip": "\(zip.path)",
                "assembly_ms": "\((ContinuousClock.now - started).milliseconds)",
            ])
        } catch StoreError.unavailable(let reason) {
            // Not the job's fault: the periodic check assembles it once the database is back.
            logger.warning("assembly postponed: database unavailable", metadata: [
                "job": "\(jobID.lowercased)", "error": "\(reason)",
            ])
        } catch {
            let failure = error.asFrameFlowError
            logger.error("assembly failed", metadata: ["job": "\(jobID.lowercased)", "error": "\(failure)"])
            _ = try? await jobs.fail(id: jobID, code: failure.code == .internalError ? .archiveFailed : failure.code,
                                     message: "cannot assemble the archive: \(failure.message)")
            onJobChange(jobID)
        }
    }

    private func dropJobFiles(_ jobID: UUID, keepUpload: Bool = true) {
        for key in released.keys where key.job == jobID { released[key] = nil }
        try? FileManager.default.removeItem(at: layout.spoolDirectory(jobID))
        if !keepUpload { try? FileManager.default.removeItem(at: layout.uploadDirectory(jobID)) }
    }

    private func meta(_ ref: LeaseRef, node: String, _ extra: Logger.Metadata = [:]) -> Logger.Metadata {
        let ids: Logger.Metadata = [
            "job": "\(ref.jobID.lowercased)", "segment": "\(ref.segment)", "epoch": "\(ref.epoch)", "node": "\(node)",
        ]
        return ids.merging(extra) { id, _ in id }
    }
}
