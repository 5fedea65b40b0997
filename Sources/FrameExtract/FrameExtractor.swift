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
        let started = Stopwatch()
        let source = try FileByteSource(path: request.input)
        let info = try MediaProbe.probe(source: source, formatHint: request.input)
        let openProbe = started.seconds
        let segmentSeconds = request.segmentSeconds
            ?? ExtractRequest.automaticSegmentSeconds(videoSeconds: info.videoEndSeconds, jobs: request.jobs)
        let plan = try SegmentPlanner.makePlan(info, rate: request.rate, segmentSeconds: segmentSeconds)
        let planned = started.seconds
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
        let working = Stopwatch()
        threads.forEach { $0.start() }
        threads.forEach { $0.join() }
        let workersWall = working.seconds
        let archiving = Stopwatch()
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
        let times = state.workerTimes.withLock { $0 }
        var profile = ExtractProfile(openProbe: openProbe, plan: planned - openProbe, workersWall: workersWall, workers: stats,
                                     archive: archiving.seconds, total: started.seconds)
        profile.workerOpen = times.reduce(0) { $0 + $1.open }
        profile.workerBusy = times.map(\.busy).sorted()
        return ExtractSummary(frames: total, segments: plan.segments.count, decodedFrames: stats.decodedFrames,
                              sourceFrames: info.frameCount, bytesRead: stats.bytesRead, output: request.output, profile: profile)
    }

    static func spoolFile(_ spool: URL, _ sample: Int, _ format: ImageFormat) -> URL {
        spool.appendingPathComponent("\(sample).\(format.fileExtension)")
    }

    /// One worker: takes the next segment until none is left or someone failed.
    private static func work(state: WorkState, plan: SegmentPlan, source: FileByteSource, hint: String, options: OutputOptions,
                             spool: URL, progress: (@Sendable (ExtractProgress) -> Void)?) {
        let busy = Stopwatch()
        var opening: Double = 0
        defer { state.workerTimes.withLock { $0.append((opening, busy.seconds)) } }
        do {
            let decoder = try SegmentDecoder(source: source, formatHint: hint)
            opening = busy.seconds
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
