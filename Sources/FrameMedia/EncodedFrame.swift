import FrameCore

/// One encoded sample, ready to be spooled or sent: which sample it is, the source frame's
/// timestamp, and the image bytes.
public struct EncodedFrame: Sendable {
    /// Global sample number (0-based) within the job.
    public var sampleIndex: UInt32
    /// Presentation timestamp of the source frame, in the stream time base.
    public var pts: Int64
    /// Source timestamp in seconds from the container start (what a player's clock shows).
    public var seconds: Double
    /// Image size in pixels, after rotation and downscaling.
    public var width: Int
    public var height: Int
    public var format: ImageFormat
    /// The encoded PNG or JPEG file.
    public var data: [UInt8]

    public init(sampleIndex: UInt32, pts: Int64, seconds: Double, width: Int, height: Int, format: ImageFormat, data: [UInt8]) {
        self.sampleIndex = sampleIndex
        self.pts = pts
        self.seconds = seconds
        self.width = width
        self.height = height
        self.format = format
        self.data = data
    }
}
