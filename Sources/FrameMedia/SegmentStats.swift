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

/// The MD5 of one sample's raw decoded picture, hashed the way `ffmpeg -f framemd5` does
/// (planes packed with no padding), so samples can be checked against the ffmpeg tool.
public struct SampleDigest: Sendable, Hashable {
    public var sampleIndex: UInt32
    public var pts: Int64
    public var seconds: Double
    /// Lower-case hexadecimal MD5.
    public var md5: String
}

/// What one segment run cost: frames the decoder produced, samples emitted, bytes read
/// from the source (including seeks' re-reads), so planners and benchmarks can see the work.
public struct SegmentStats: Sendable, Hashable {
    public var decodedFrames: Int
    public var emittedFrames: Int
    public var bytesRead: Int64
    /// Times decoding jumped ahead to a keyframe instead of decoding the gap (by seeking, or
    /// by dropping read-ahead packets), including the initial positioning.
    public var seeks: Int

    public init(decodedFrames: Int = 0, emittedFrames: Int = 0, bytesRead: Int64 = 0, seeks: Int = 0) {
        self.decodedFrames = decodedFrames
        self.emittedFrames = emittedFrames
        self.bytesRead = bytesRead
        self.seeks = seeks
    }
}
