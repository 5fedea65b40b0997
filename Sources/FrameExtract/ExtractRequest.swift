import Foundation
import FrameCore

/// What `frameflow extract` was asked to do: one input file, a sampling rate, how to encode
/// the frames, how to split and parallelise the work, and where to write the ZIP.
public struct ExtractRequest: Sendable {
    public var input: String
    public var rate: Rational
    public var options: OutputOptions
    /// Segments decoded at once, each on its own thread with its own decoder.
    public var jobs: Int
    /// Target segment length in seconds (segments start on keyframes); nil picks one from the
    /// video's length and `jobs` (``automaticSegmentSeconds(videoSeconds:jobs:)``).
    public var segmentSeconds: Double?
    public var output: URL

    public init(input: String, rate: Rational, options: OutputOptions = OutputOptions(), jobs: Int = ExtractRequest.defaultJobs,
                segmentSeconds: Double? = nil, output: URL) {
        self.input = input
        self.rate = rate
        self.options = options
        self.jobs = jobs
        self.segmentSeconds = segmentSeconds
        self.output = output
    }

    /// Segments per worker the automatic length aims at, and its bounds in seconds.
    public static let segmentsPerWorker = 8.0
    public static let automaticSegmentRange: ClosedRange<Double> = 2...10

    /// The segment length for a video of `videoSeconds` on `jobs` workers: short enough that
    /// each worker takes about ``segmentsPerWorker`` segments, so the last ones to finish leave
    /// the others idle for a fraction of a segment, not for a third of the job (a 60 s video
    /// in 10 s segments gave two workers three each, and one sat idle 1.7 s of 8 s); within
    /// ``automaticSegmentRange``. A segment boundary costs one seek: its first sample's
    /// keyframe is the segment's own, so nothing is decoded twice.
    public static func automaticSegmentSeconds(videoSeconds: Double, jobs: Int) -> Double {
        guard videoSeconds.isFinite, videoSeconds > 0 else { return automaticSegmentRange.upperBound }
        let target = videoSeconds / (Double(max(1, jobs)) * segmentsPerWorker)
        return min(max(target, automaticSegmentRange.lowerBound), automaticSegmentRange.upperBound)
    }

    /// One worker per core.
    public static var defaultJobs: Int { max(1, ProcessInfo.processInfo.activeProcessorCount) }
}
