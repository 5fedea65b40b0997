import FrameCore

/// How a simulated node "decodes" a segment: what it reads, how long each
/// sample takes, what it sends and how often it fails or drops.
///
/// The point is to load the coordinator, PostgreSQL and the network with
/// the traffic of real nodes while spending almost nothing on the
/// simulator's side: no FFmpeg, canned images (``CannedImage``).
public struct DecodeModel: Sendable, Equatable {
    /// Time per sample (0: as fast as the connection takes frames).
    public var timePerSample: Duration
    /// Bytes read from the source per segment (READ requests of at most 1 MiB; capped at the source size).
    public var bytesReadPerSegment: Int
    /// Approximate size of each FRAME's image.
    public var frameBytes: Int
    /// The source's dimensions: frames must have the job's output size, derived from them.
    public var sourceWidth: Int
    public var sourceHeight: Int
    /// Probability that a segment ends with a retryable SEGMENT_FAILED instead of SEGMENT_DONE.
    public var failureRate: Double
    /// Connection drops per node per second (each node then reconnects at once).
    public var disconnectRate: Double

    public init(
        timePerSample: Duration = .milliseconds(20), bytesReadPerSegment: Int = 256 * 1024, frameBytes: Int = 20_000,
        sourceWidth: Int = 320, sourceHeight: Int = 240, failureRate: Double = 0, disconnectRate: Double = 0
    ) {
        self.timePerSample = timePerSample
        self.bytesReadPerSegment = bytesReadPerSegment
        self.frameBytes = frameBytes
        self.sourceWidth = sourceWidth
        self.sourceHeight = sourceHeight
        self.failureRate = failureRate
        self.disconnectRate = disconnectRate
    }
}
