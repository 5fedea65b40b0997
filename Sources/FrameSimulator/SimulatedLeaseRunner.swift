import FrameCore
import FrameNode
import FrameWire
import NIOCore

/// A node's lease work, simulated: for each LEASE it READs the configured
/// bytes, waits the model's time per sample and sends one canned FRAME per
/// sample, then SEGMENT_DONE (or, at the failure rate, a retryable
/// SEGMENT_FAILED). Plugged into the real ``NodeAgent`` (HELLO, WELCOME,
/// heartbeats, reconnects), so the coordinator sees real sessions.
///
/// Leases run as children of ``run()``, fed by ``handle(_:)`` through a
/// stream: the agent's reader never waits for a lease's work.
public actor SimulatedLeaseRunner: LeaseRunner {
    private let model: DecodeModel
    private var send: (@Sendable (Message) async throws -> Void)?
    private var active: Set<LeaseRef> = []
    private var cancelled: Set<LeaseRef> = []
    private var reads: [UInt32: CheckedContinuation<ReadData?, Never>] = [:]
    /// READs sent and not yet answered, and answers that arrived before their reader waited.
    private var expected: Set<UInt32> = []
    private var answers: [UInt32: ReadData] = [:]
    private var nextRequest: UInt32 = 1
    private var framesTotal: UInt64 = 0
    private var draining = false
    private var images: [ImageFormat: ByteBuffer] = [:]
    private nonisolated let leases: AsyncStream<Lease>
    private nonisolated let leaseInput: AsyncStream<Lease>.Continuation
    /// Totals across every simulated node, for the simulator's report.
    nonisolated let counters: SimulatorCounters

    public init(model: DecodeModel, counters: SimulatorCounters) {
        self.model = model
        self.counters = counters
        (leases, leaseInput) = AsyncStream.makeStream(of: Lease.self)
    }

    /// Runs the leases handed over until cancelled.
    public nonisolated func run() async {
        await withDiscardingTaskGroup { group in
            for await lease in leases { group.addTask { await self.work(lease) } }
        }
    }

    public func attach(send: @escaping @Sendable (Message) async throws -> Void, resumed: [LeaseRef]) {
        self.send = send
        // Nothing is resumed: a simulated node abandons what it held (the coordinator requeues it).
        for ref in active where !resumed.contains(ref) { cancelled.insert(ref) }
        counters.connected(+1)
    }

    public func detach() {
        send = nil
        for (_, waiter) in reads { waiter.resume(returning: nil) }
        reads = [:]
        answers = [:]
        expected = []
        counters.connected(-1)
    }

    public func handle(_ message: Message) {
        switch message {
        case .leaseURL(let leaseURL):
            // Simulated work reads nothing, so where the bytes would come from does not matter.
            handle(.lease(leaseURL.lease))
        case .lease(let lease):
            guard !draining else { return }
            active.insert(lease.lease)
            counters.leased()
            leaseInput.yield(lease)
        case .readData(let data):
            guard expected.remove(data.requestID) != nil else { return }
            if let waiter = reads.removeValue(forKey: data.requestID) {
                waiter.resume(returning: data)
            } else {
                answers[data.requestID] = data
            }
        case .cancel(let cancel):
            cancelled.insert(cancel.lease)
        default:
            break
        }
    }

    public func drain() { draining = true }

    public func heldLeases() -> [LeaseRef] { [] }

    public func figures() -> (activeLeases: Int, framesTotal: UInt64) { (active.count, framesTotal) }

    // MARK: one lease

    private func work(_ lease: Lease) async {
        defer { finish(lease.lease) }
        let ref = lease.lease
        var offset: UInt64 = 0
        let want = UInt64(min(max(0, model.bytesReadPerSegment), Int(clamping: lease.sourceSize)))
        while offset < want {
            let length = UInt32(min(UInt64(Read.maxLength), want - offset))
            guard let data = await read(Read(requestID: 0, lease: ref, offset: offset, length: length)), data.isOK else { return }
            offset += UInt64(data.data.readableBytes)
            if data.data.readableBytes == 0 { break }
        }
        let spec = lease.segment
        let size = lease.options.outputSize(width: model.sourceWidth, height: model.sourceHeight, rotation: 0)
        let image = self.image(lease.options.format, size)
        let rate = spec.rate.doubleValue
        for i in 0..<spec.sampleCount {
            if model.timePerSample > .zero { try? await Task.sleep(for: model.timePerSample) }
            guard !Task.isCancelled, !cancelled.contains(ref), let send else { return }
            let sample = spec.firstSample &+ i
            let seconds = rate > 0 ? Double(sample) / rate : 0
            do {
                try await send(.frame(Frame(
                    lease: ref, sampleIndex: sample, pts: Int64(sample), seconds: seconds, format: lease.options.format,
                    width: UInt32(size.width), height: UInt32(size.height), data: image)))
            } catch { return }
            framesTotal += 1
            counters.frame(bytes: image.readableBytes)
        }
        guard !cancelled.contains(ref), let send else { return }
        if model.failureRate > 0, Double.random(in: 0..<1) < model.failureRate {
            try? await send(.segmentFailed(SegmentFailed(
                lease: ref, code: .decodeFailed, retryable: true, message: "simulated failure")))
            counters.failed()
            return
        }
        try? await send(.segmentDone(SegmentDone(
            lease: ref, frameCount: spec.sampleCount, decodedFrames: spec.sampleCount, bytesRead: offset,
            elapsedMillis: 0)))
        counters.done()
    }

    private func finish(_ ref: LeaseRef) {
        active.remove(ref)
        cancelled.remove(ref)
    }

    private func read(_ request: Read) async -> ReadData? {
        guard let send else { return nil }
        let id = nextRequest
        nextRequest &+= 1
        var request = request
        request.requestID = id
        expected.insert(id)
        do { try await send(.read(request)) } catch {
            expected.remove(id)
            return nil
        }
        // The answer may have come in while the send was suspended.
        if let early = answers.removeValue(forKey: id) { return early }
        guard expected.contains(id) else { return nil }  // detached meanwhile
        return await withCheckedContinuation { waiter in reads[id] = waiter }
    }

    private func image(_ format: ImageFormat, _ size: (width: Int, height: Int)) -> ByteBuffer {
        if let cached = images[format] { return cached }
        var buffer = ByteBuffer()
        buffer.writeBytes(CannedImage.make(format, width: size.width, height: size.height, bytes: model.frameBytes))
        images[format] = buffer
        return buffer
    }
}
