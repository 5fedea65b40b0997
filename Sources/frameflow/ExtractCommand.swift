import ArgumentParser
import Foundation
import FrameCore
import FrameExtract
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// `frameflow extract`: pulls frames out of a local video into a ZIP without a cluster,
/// the same frames and archive the cluster produces. Parsing only; the work is
/// `FrameExtractor` in FrameExtract.
public struct ExtractCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "extract",
        abstract: "Extract frames from a local video into a ZIP (PNG or JPEG), in-process.",
        discussion: """
            Frames are the ones `ffmpeg -i INPUT -vf fps=R` would output. Exit status: 0 on success, \
            2 for invalid options, 1 when the input cannot be processed.
            """)

    @Argument(help: "The video file to read.")
    public var input: String

    @Option(name: .customLong("fps"), help: "Frames per second to extract: 1, 0.1, 2.5, 1/3 ...")
    public var fps: String = "1"

    @Option(help: "Image format: png (lossless) or jpg.")
    public var format: String = "png"

    @Option(help: "JPEG quality, 1 (best) to 31 (worst), as ffmpeg -q:v.")
    public var quality: Int = 2

    @Option(help: "Largest output width in pixels (keeps the aspect ratio).")
    public var maxWidth: Int = 0

    @Option(help: "Largest output height in pixels (keeps the aspect ratio).")
    public var maxHeight: Int = 0

    @Option(help: "Segments decoded in parallel (default: number of cores).")
    public var jobs: Int = ExtractRequest.defaultJobs

    @Option(help: "Target segment length in seconds (default: about 8 segments per worker, 2 to 10 s).")
    public var segmentSeconds: Double?

    @Option(name: [.short, .long], help: "The ZIP file to write.")
    public var output: String

    @Flag(help: "Print a summary of the work done (frames decoded per sample) to stderr.")
    public var verbose = false

    public init() {}

    public func run() throws {
        let request: ExtractRequest
        do {
            request = try makeRequest()
        } catch {
            Self.fail(error, status: 2)
        }
        let bar = ProgressLine(enabled: isatty(STDERR_FILENO) == 1)
        let started = Date()
        do {
            let summary = try FrameExtractor.run(request) { bar.update($0) }
            bar.finish()
            if verbose {
                let perSample = summary.frames > 0 ? Double(summary.decodedFrames) / Double(summary.frames) : 0
                FileHandle.standardError.write(Data(String(
                    format: "extract: %d frames, %d segments, decoded %d of %d source frames (%.1f per sample), read %.1f MB in %.2f s\n",
                    summary.frames, summary.segments, summary.decodedFrames, summary.sourceFrames, perSample,
                    Double(summary.bytesRead) / 1e6, Date().timeIntervalSince(started)).utf8))
                let p = summary.profile, w = p.workers
                let busy = p.workerBusy.map { String(format: "%.2f", $0) }.joined(separator: "/")
                FileHandle.standardError.write(Data(String(
                    format: "extract profile: open+probe %.2f s, plan %.2f s, workers %.2f s wall (%d threads, busy \(busy) s: open %.2f s, %d seeks, %d GOP tails skipped; seek %.2f s, decode %.2f s, convert %.2f s, encode %.2f s, spool %.2f s), archive %.2f s, total %.2f s, cpu %.2f s\n",
                    p.openProbe, p.plan, p.workersWall, p.workerBusy.count, p.workerOpen, w.seeks, w.gopTailsSkipped, w.seekSeconds,
                    w.decodeSeconds, w.convertSeconds, w.encodeSeconds, w.deliverSeconds, p.archive, p.total, Self.processCPUSeconds()).utf8))
            }
        } catch {
            bar.finish()
            Self.fail(error, status: 1)
        }
    }

    /// User + system CPU seconds of this process so far (all threads).
    static func processCPUSeconds() -> Double {
        var t = timespec()
        guard clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t) == 0 else { return 0 }
        return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
    }

    func makeRequest() throws(FrameFlowError) -> ExtractRequest {
        guard let rate = Rational(parsing: fps) else {
            throw FrameFlowError(.invalidRate, "--fps must be a positive number or fraction (1, 0.1, 2.5, 1/3), got '\(fps)'")
        }
        guard let imageFormat = ImageFormat(name: format) else {
            throw FrameFlowError(.invalidOptions, "--format must be png or jpg, got '\(format)'")
        }
        guard (1...31).contains(quality) else {
            throw FrameFlowError(.invalidOptions, "--quality must be between 1 (best) and 31 (worst), got \(quality)")
        }
        guard (0...16384).contains(maxWidth), (0...16384).contains(maxHeight) else {
            throw FrameFlowError(.invalidOptions, "--max-width/--max-height must be between 0 and 16384")
        }
        guard jobs >= 1, jobs <= 256 else { throw FrameFlowError(.invalidOptions, "--jobs must be between 1 and 256") }
        if let segmentSeconds, !(segmentSeconds.isFinite && segmentSeconds > 0) {
            throw FrameFlowError(.invalidOptions, "--segment-seconds must be positive")
        }
        guard output.lowercased().hasSuffix(".zip") else {
            throw FrameFlowError(.invalidOptions, "--output must name a .zip file, got '\(output)'")
        }
        return ExtractRequest(
            input: input, rate: rate,
            options: OutputOptions(format: imageFormat, quality: UInt8(quality), maxWidth: UInt32(maxWidth), maxHeight: UInt32(maxHeight)),
            jobs: jobs, segmentSeconds: segmentSeconds, output: URL(fileURLWithPath: output))
    }

    /// One line on stderr, then exit: scripts get a status, people get the reason.
    static func fail(_ error: any Error, status: Int32) -> Never {
        let e = error.asFrameFlowError
        FileHandle.standardError.write(Data("frameflow extract: error: \(e.code.name): \(e.message)\n".utf8))
        Foundation.exit(status)
    }
}

/// The progress line on a terminal: redrawn in place at most ten times a second.
final class ProgressLine: Sendable {
    private let enabled: Bool
    private let state = Mutex<(last: Date, drawn: Bool)>((Date.distantPast, false))

    init(enabled: Bool) { self.enabled = enabled }

    func update(_ p: ExtractProgress) {
        guard enabled else { return }
        state.withLock { s in
            let now = Date()
            guard now.timeIntervalSince(s.last) >= 0.1 || p.framesDone == p.framesTotal else { return }
            s.last = now
            s.drawn = true
            let line = "\rextracting: \(p.framesDone)/\(p.framesTotal) frames, \(p.segmentsDone)/\(p.segmentsTotal) segments"
            FileHandle.standardError.write(Data(line.utf8))
        }
    }

    func finish() {
        guard enabled else { return }
        state.withLock { if $0.drawn { FileHandle.standardError.write(Data("\n".utf8)) } }
    }
}

