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
    /// Target segment length in seconds (segments start on keyframes).
    public var segmentSeconds: Double
    public var output: URL

    public init(input: String, rate: Rational, options: OutputOptions = OutputOptions(), jobs: Int = ExtractRequest.defaultJobs,
                segmentSeconds: Double = 10, output: URL) {
        self.input = input
        self.rate = rate
        self.options = options
        self.jobs = jobs
        self.segmentSeconds = segmentSeconds
        self.output = output
    }

    /// One worker per core.
    public static var defaultJobs: Int { max(1, ProcessInfo.processInfo.activeProcessorCount) }
}

/// How far an extraction has got; delivered after every encoded frame.
public struct ExtractProgress: Sendable {
    public var framesDone: Int
    public var framesTotal: Int
    public var segmentsDone: Int
    public var segmentsTotal: Int
}

/// What an extraction did: the probed video, the plan's size and the decoding work.
public struct ExtractSummary: Sendable {
    public var frames: Int
    public var segments: Int
    /// Frames the decoders produced (compare with `frames`: the cost per sample).
    public var decodedFrames: Int
    public var sourceFrames: Int
    public var bytesRead: Int64
    public var output: URL
}
