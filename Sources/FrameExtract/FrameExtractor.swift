import Foundation
import FrameArchive
import FrameCore
import FrameMedia
import Synchronization

/// The whole extraction in one process, the same way the cluster does it: probe, plan
/// segments on keyframes, decode segments in parallel (one decoder per worker thread), spool
/// each frame to disk, and assemble the ZIP in sample order.
///
/// Workers are plain threads, not Swift tasks, because decoding blocks (file reads, FFmpeg)
/// and would starve the cooperative pool. Frames are spooled to files beside the output so
/// memory stays flat however many frames a job has; the ZIP is the same as the coordinator
/// assembles from its spool. The first failure cancels the other workers.
public enum FrameExtractor {
    public static func run(_ request: ExtractRequest,
                           progress: (@Sendable (ExtractProgress) -> Void)? = nil) throws(FrameFlowError) -> ExtractSummary {
        do {
            return try extract(request, progress: progress)
        } catch let error as FrameFlowError {
            throw error
        } catch {
            throw error.asFrameFlowError
        }
    }

    private static func extract(_ request: ExtractRequest, progress: (@Sendable (ExtractProgress) -> Void)?) throws -> ExtractSummary {
        guard request.jobs >= 1 else { throw FrameFlowError(.invalidOptions, "jobs must be at least 1") }
        let options = try request.options.validated()
        let source = try FileByteSource(path: request.input)
        let info = try MediaProbe.probe(source: source, formatHint: request.input)
        let plan = try SegmentPlanner.makePlan(info, rate: request.rate, segmentSeconds: request.segmentSeconds)
        let total = Int(plan.totalSamples)

        let writer = try ArchiveWriter(destination: request.output)
        let spool = request.output.deletingLastPathComponent()
            .appendingPathComponent(".\(request.output.lastPathComponent).\(UUID().uuidString).frames")
        try FileManager.default.createDirectory(at: spool, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(at: spool) }

        let state = WorkState(total: total, segments: plan.segments.count)
        let workers = min(request.jobs, max(1, plan.segments.count))
        let threads = (0..<workers).map { _ in
            WorkerThread {
                work(state: state, plan: plan, source: source, hint: request.input, options: options, spool: spool, progress: progress)
            }
        }
        threads.forEach { $0.start() }
        threads.forEach { $0.join() }
        if let failure = state.failure.withLock({ $0 }) {
            writer.discard()
            throw failure
        }

        let seconds = state.seconds.withLock { $0 }
        var frames: [ArchiveManifest.Frame] = []
        frames.reserveCapacity(total)
        for sample in 0..<total {
            guard let time = seconds[sample] else {
                writer.discard()
                throw FrameFlowError(.frameCountMismatch, "sample \(sample) was not produced")
            }
            let name = FrameNaming.name(sampleIndex: sample, total: total, format: options.format)
            try writer.add(name: name, fileURL: spoolFile(spool, sample, options.format))
            frames.append(.init(name: name, seconds: time))
        }
        let display = info.displaySize
        try writer.finish(manifest: ArchiveManifest(
            source: URL(fileURLWithPath: request.input).lastPathComponent, durationSeconds: info.durationSeconds,
            codec: info.codec, width: display.width, height: display.height, rate: request.rate,
            format: options.format, frames: frames))
        let stats = state.stats.withLock { $0 }
        return ExtractSummary(frames: total, segments: plan.segments.count, decodedFrames: stats.decodedFrames,
                              sourceFrames: info.frameCount, bytesRead: stats.bytesRead, output: request.output)
    }

    static func spoolFile(_ spool: URL, _ sample: Int, _ format: ImageFormat) -> URL {
        spool.appendingPathComponent("\(sample).\(format.fileExtension)")
    }

    /// One worker: takes the next segment until none is left or someone failed.
    private static func work(state: WorkState, plan: SegmentPlan, source: FileByteSource, hint: String, options: OutputOptions,
                             spool: URL, progress: (@Sendable (ExtractProgress) -> Void)?) {
        do {
            let decoder = try SegmentDecoder(source: source, formatHint: hint)
            while let index = state.nextSegment(), !state.failed.load(ordering: .relaxed) {
                let spec = plan.segments[index]
                let stats = try decoder.run(spec, options: options, isCancelled: { state.failed.load(ordering: .relaxed) }) { frame in
                    try Data(frame.data).write(to: spoolFile(spool, Int(frame.sampleIndex), options.format))
                    let done = state.recordFrame(Int(frame.sampleIndex), seconds: frame.seconds)
                    progress?(ExtractProgress(framesDone: done, framesTotal: state.total,
                                              segmentsDone: state.segmentsDone.load(ordering: .relaxed), segmentsTotal: state.segmentCount))
                }
                state.finishSegment(stats)
                progress?(ExtractProgress(framesDone: state.framesDone.load(ordering: .relaxed), framesTotal: state.total,
                                          segmentsDone: state.segmentsDone.load(ordering: .relaxed), segmentsTotal: state.segmentCount))
            }
        } catch {
            state.fail(error.asFrameFlowError)
        }
    }
}

/// Shared bookkeeping of one extraction's workers.
final class WorkState: Sendable {
    let total: Int
    let segmentCount: Int
    let next = Atomic<Int>(0)
    let failed = Atomic<Bool>(false)
    let framesDone = Atomic<Int>(0)
    let segmentsDone = Atomic<Int>(0)
    let failure = Mutex<FrameFlowError?>(nil)
    let seconds: Mutex<[Double?]>
    let stats = Mutex(SegmentStats())

    init(total: Int, segments: Int) {
        self.total = total
        self.segmentCount = segments
        seconds = Mutex([Double?](repeating: nil, count: total))
    }

    func nextSegment() -> Int? {
        let i = next.add(1, ordering: .relaxed).oldValue
        return i < segmentCount ? i : nil
    }

    func recordFrame(_ sample: Int, seconds time: Double) -> Int {
        seconds.withLock { if sample < $0.count { $0[sample] = time } }
        return framesDone.add(1, ordering: .relaxed).newValue
    }

    func finishSegment(_ s: SegmentStats) {
        segmentsDone.add(1, ordering: .relaxed)
        stats.withLock {
            $0.decodedFrames += s.decodedFrames
            $0.emittedFrames += s.emittedFrames
            $0.bytesRead += s.bytesRead
            $0.seeks += s.seeks
        }
    }

    /// Keeps the first failure (later ones are usually the cancellation it caused).
    func fail(_ error: FrameFlowError) {
        failure.withLock { if $0 == nil { $0 = error } }
        failed.store(true, ordering: .relaxed)
    }
}

/// A joinable thread: decoding blocks, so it gets a real thread rather than a task.
final class WorkerThread {
    private let thread: Thread
    private let done = DispatchSemaphore(value: 0)

    init(_ body: @escaping @Sendable () -> Void) {
        let done = self.done
        thread = Thread {
            body()
            done.signal()
        }
        thread.stackSize = 8 << 20
    }

    func start() { thread.start() }
    func join() { done.wait() }
}
