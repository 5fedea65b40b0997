import FrameCore

/// What the user asked for with an upload: the sampling rate, the image
/// output and (optionally) labels a node must carry. Already validated.
public struct JobOptions: Sendable, Hashable {
    public var rate: Rational
    public var output: OutputOptions
    public var labelRequirement: [String: String]?

    public init(rate: Rational, output: OutputOptions, labelRequirement: [String: String]? = nil) {
        self.rate = rate
        self.output = output
        self.labelRequirement = labelRequirement
    }
}
