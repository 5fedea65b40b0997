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
