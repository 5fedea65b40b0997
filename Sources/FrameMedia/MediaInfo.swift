import FrameCore

/// What the probe learned about a video: container, timing, the chosen video stream and a
/// keyframe index built by one demux pass (no decoding).
///
/// The coordinator stores this at upload time and plans from it; it is `Codable` so it can be
/// kept in the job record. Timestamps are in the video stream's ``timeBase``.
/// ``firstPTS`` and ``endPTS`` bound the presentation timestamps of the frames the decoder
/// outputs, which is what the sample count depends on.
public struct MediaInfo: Sendable, Hashable, Codable {
    /// libavformat's short name of the container, e.g. `mov,mp4,m4a,3gp,3g2,mj2`.
    public var container: String
    /// Duration in seconds as the container reports it (falls back to the scanned video span).
    public var durationSeconds: Double
    /// The `fps` rule's origin in microseconds: `AVFormatContext.start_time` (0 when unknown),
    /// in formats with timestamp discontinuities (MPEG-TS/PS, FLV) the video's start when later.
    public var startTimeMicros: Int64
    /// Index of the video stream in the container (not necessarily 0).
    public var streamIndex: Int
    /// Decoder name of the video codec, e.g. `h264`.
    public var codec: String
    /// Coded picture size in pixels, before display rotation.
    public var width: Int
    public var height: Int
    /// Clockwise rotation a player applies, in degrees: 0, 90, 180 or 270.
    public var rotation: Int
    /// The video stream's time base.
    public var timeBase: Rational
    /// Average frame rate from the container (0/1 when unknown).
    public var frameRate: Rational
    /// Whether frame durations vary (variable frame rate), judged from the scanned timestamps.
    public var isVariableFrameRate: Bool
    /// Number of video frames the scan found (packets the decoder will output).
    public var frameCount: Int
    /// Smallest presentation timestamp of an output frame.
    public var firstPTS: Int64
    /// Presentation timestamp of the last frame.
    public var lastPTS: Int64
    /// Duration of the last frame (its packet duration, or one frame period when unknown).
    public var lastDuration: Int64
    /// Keyframes in presentation order, from the demux scan. Keyframes cut away by an edit
    /// list come first, with timestamps below ``firstPTS``: decoding has to start there.
    public var keyframes: [Keyframe]
    /// Keyframe entries in the container's own index (`avformat_index_get_entry`) after
    /// opening, before the scan; 0 for containers without one (MPEG-TS) or with lazy cues (MKV).
    public var containerIndexKeyframes: Int

    /// Width and height as a player shows them (swapped for 90 and 270 degree rotations).
    public var displaySize: (width: Int, height: Int) {
        rotation % 180 == 0 ? (width, height) : (height, width)
    }

    /// Seconds from the container start to the end of the last frame.
    public var videoEndSeconds: Double {
        Double(lastPTS + lastDuration) * timeBase.doubleValue - Double(startTimeMicros) / 1e6
    }
}
