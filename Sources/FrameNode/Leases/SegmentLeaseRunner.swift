import FrameCluster
import FrameCore
import FrameMedia
import FrameWire
import Foundation
import Logging
import NIOCore

/// Runs the segments a coordinator leases to this node, up to `slots` at a
/// time, each on its own thread (FFmpeg's I/O callbacks block).
///
/// For each LEASE it fetches the video bytes it needs with READ, decodes the
/// segment's samples with FrameMedia's ``SegmentDecoder``, streams every
/// encoded image as a FRAME and ends with SEGMENT_DONE, or SEGMENT_FAILED
/// with the error's code (retryable or not). CANCEL, a STALE_EPOCH error
/// about the lease, or the loss of the session stops the segment's work.
public actor SegmentLeaseRunner: LeaseRunner {
    /// One running segment.
    final class Work: @unchecked Sendable {
        let lease: Lease
        private let lock = NSLock()
        private var cancelled = false
        init(lease: Lease) { self.lease = lease }
        var isCancelled: Bool { lock.withLock { cancelled } }
        func cancel() { lock.withLock { cancelled = true } }
    }

    private let slots: Int
    private let logger: Logger
    private let router = ReadRouter()
    private var send: (@Sendable (Message) async throws -> Void)?
    private var active: [LeaseRef: Work] = [:]
    private var framesTotal: UInt64 = 0
    private var draining = false

    public init(slots: Int, logger: Logger) {
        self.slots = max(1, slots)
        self.logger = logger
    }

    public func attach(send: @escaping @Sendable (Message) async throws -> Void) {
        self.send = send
    }

    public func detach() {
        send = nil
        // The coordinator requeues this node's leases when the session ends,
        // so running on would only produce results it must refuse.
        for work in active.values { work.cancel() }
        router.failAll(FrameFlowError(.shuttingDown, "session to the coordinator ended"))
    }

    public func drain() { draining = true }

    public func heldLeases() -> [LeaseRef] { Array(active.keys) }

    public func figures() -> (activeLeases: Int, framesTotal: UInt64) { (active.count, framesTotal) }

    public func handle(_ message: Message) async {
        switch message {
        case .lease(let lease):
            await start(lease)
        case .readData(let data):
            router.deliver(data)
        case .cancel(let cancel):
            if let work = active[cancel.lease] {
                logger.info("segment cancelled by the coordinator", metadata: metadata(cancel.lease))
                work.cancel()
                router.failAll(lease: cancel.lease, FrameFlowError(.cancelled, "lease cancelled"))
            }
        case .error(let error):
            if let ref = error.lease, let work = active[ref] {
                logger.warning("coordinator refused a result; stopping the segment", metadata: metadata(ref))
                work.cancel()
                router.failAll(lease: ref, FrameFlowError(error.errorCode ?? .staleEpoch, error.message))
            }
        default:
            break
        }
    }

    private func start(_ lease: Lease) async {
        guard let send else { return }
        guard !draining, active.count < slots, active[lease.lease] == nil else {
            let why = draining ? "node is draining" : "no free slot"
            try? await send(.segmentFailed(SegmentFailed(lease: lease.lease, code: .shuttingDown, retryable: true, message: why)))
            return
        }
        let work = Work(lease: lease)
        active[lease.lease] = work
        logger.info("segment leased", metadata: metadata(lease.lease).merging([
            "samples": "\(lease.segment.sampleCount)", "first_sample": "\(lease.segment.firstSample)",
        ]) { a, _ in a })
        let router = self.router
        let thread = Thread { [weak self] in
            let outcome = Self.run(work, router: router, send: send)
            Task { await self?.finished(work, outcome) }
        }
        thread.name = "segment \(lease.lease.segment)"
        thread.stackSize = 8 << 20
        thread.start()
    }

    private func finished(_ work: Work, _ outcome: Outcome) {
        if active[work.lease.lease] === work { active[work.lease.lease] = nil }
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
    private static func run(_ work: Work, router: ReadRouter, send: @escaping @Sendable (Message) async throws -> Void) -> Outcome {
        let lease = work.lease
        let started = ContinuousClock.now
        let source = RemoteByteSource(size: Int64(lease.sourceSize), lease: lease.lease, router: router, send: send)
        var sent = 0
        do {
            let decoder = try SegmentDecoder(source: source, formatHint: lease.formatHint.isEmpty ? nil : lease.formatHint)
            let stats = try decoder.run(lease.segment, options: lease.options, isCancelled: { work.isCancelled }) { frame in
                var data = ByteBuffer()
                data.writeBytes(frame.data)
                try blocking(send, .frame(Frame(
                    lease: lease.lease, sampleIndex: frame.sampleIndex, pts: frame.pts, seconds: frame.seconds,
                    format: frame.format, width: UInt32(frame.width), height: UInt32(frame.height), data: data)))
                sent += 1
            }
            guard !work.isCancelled else { return Outcome(frames: sent, summary: "cancelled") }
            let elapsed = ContinuousClock.now - started
            try blocking(send, .segmentDone(SegmentDone(
                lease: lease.lease, frameCount: UInt32(stats.emittedFrames), decodedFrames: UInt32(stats.decodedFrames),
                bytesRead: UInt64(source.bytesFetched), elapsedMillis: UInt32(clamping: elapsed.milliseconds))))
            return Outcome(frames: sent, summary: "done (\(stats.decodedFrames) decoded)")
        } catch {
            if work.isCancelled { return Outcome(frames: sent, summary: "cancelled") }
            let failure = error.asFrameFlowError
            try? blocking(send, .segmentFailed(SegmentFailed(
                lease: lease.lease, code: failure.code, retryable: failure.code.isRetryable, message: failure.message)))
            return Outcome(frames: sent, summary: "failed \(failure.code.name)")
        }
    }

    /// Sends from a decode thread and waits until the message is handed to the
    /// connection, which is the back-pressure that keeps frames from piling up.
    private static func blocking(_ send: @escaping @Sendable (Message) async throws -> Void, _ message: Message) throws {
        let semaphore = DispatchSemaphore(value: 0)
        let box = ErrorBox()
        Task {
            do { try await send(message) } catch { box.error = error }
            semaphore.signal()
        }
        semaphore.wait()
        if let error = box.error { throw error }
    }

    final class ErrorBox: @unchecked Sendable { var error: (any Error)? }

    private func metadata(_ ref: LeaseRef) -> Logger.Metadata {
        ["job": "\(ref.jobID.uuidString.lowercased())", "segment": "\(ref.segment)", "epoch": "\(ref.epoch)"]
    }
}
