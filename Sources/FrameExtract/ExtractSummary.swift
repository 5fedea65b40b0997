import Foundation
import FrameMedia

/// What an extraction did: the probed video, the plan's size, the decoding work and where the
/// time went.
public struct ExtractSummary: Sendable {
    public var frames: Int
    public var segments: Int
    /// Frames the decoders produced (compare with `frames`: the cost per sample).
    public var decodedFrames: Int
    public var sourceFrames: Int
    public var bytesRead: Int64
    public var output: URL
    public var profile: ExtractProfile
}

/// Seconds per stage of one extraction. `openProbe`, `plan`, `archive` and `total` are wall
/// time on the calling thread; `workers` holds the decoding threads' stages summed over the
/// threads (so with two workers they add up to about twice the time the workers ran).
public struct ExtractProfile: Sendable {
    /// Opening the file and probing it (streams, keyframe index).
    public var openProbe: Double
    /// Planning segments.
    public var plan: Double
    /// Starting the worker threads (each opens the input and a decoder) to their end.
    public var workersWall: Double
    /// Opening the input and the decoder, summed over the worker threads.
    public var workerOpen: Double = 0
    /// Each worker thread's time from its start to its last segment's end: the spread between
    /// them is the tail imbalance (threads idle while the last segments finish).
    public var workerBusy: [Double] = []
    /// Seek, decode, convert, encode and spool (deliver) time of the workers.
    public var workers: SegmentStats
    /// Assembling the ZIP from the spooled frames.
    public var archive: Double
    public var total: Double
}
