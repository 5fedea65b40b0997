import Foundation

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
