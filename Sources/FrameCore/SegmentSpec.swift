/// A keyframe of the video stream: the timestamp the decoder gives its picture
/// (stream time base; in containers with decode times only, such as AVI with
/// B-frames, later than its packet's) and the byte position of its packet in
/// the file (-1 if unknown).
public struct Keyframe: Sendable, Hashable, Codable {
    public var pts: Int64
    public var pos: Int64

    public init(pts: Int64, pos: Int64) {
        self.pts = pts
        self.pos = pos
    }
}

/// Everything a decoder needs to produce one segment's samples, independent
/// of every other segment.
///
/// The planner (FrameMedia) produces these from the probed keyframe index; the
/// coordinator sends them in a `LEASE` frame; the node hands them back to
/// FrameMedia's segment decoder. Timestamps are in the video stream's time
/// base. The segment owns the source frames with `startPTS <= pts < endPTS`;
/// the samples it emits are the global sample numbers
/// `firstSample ..< firstSample + sampleCount`, chosen by the `fps` rule with
/// ``rate`` and ``originMicros`` (the start time the ffmpeg tool subtracts
/// before its `fps` filter).
public struct SegmentSpec: Sendable, Hashable, Codable {
    /// Index of this segment within its job (0-based).
    public var index: UInt32
    /// Index of the video stream in the container.
    public var streamIndex: UInt32
    /// The video stream's time base.
    public var timeBase: Rational
    /// Where decoding starts: the segment's first keyframe, or an earlier one
    /// when an open GOP needs references from before the segment.
    public var decodeStartPTS: Int64
    /// First timestamp owned by this segment (a keyframe).
    public var startPTS: Int64
    /// First timestamp owned by the next segment; `Int64.max` for the last one.
    public var endPTS: Int64
    /// Global number (0-based) of this segment's first sample.
    public var firstSample: UInt32
    /// How many samples this segment emits (may be 0).
    public var sampleCount: UInt32
    /// Output rate in frames per second.
    public var rate: Rational
    /// The fps rule's origin in microseconds: the container start time
    /// (`AVFormatContext.start_time`), in MPEG-TS/PS and FLV the video's start when later.
    public var originMicros: Int64
    /// Keyframes with `decodeStartPTS <= pts < endPTS`, ascending, for seeking within the segment.
    public var keyframes: [Keyframe]

    public init(
        index: UInt32, streamIndex: UInt32, timeBase: Rational, decodeStartPTS: Int64,
        startPTS: Int64, endPTS: Int64, firstSample: UInt32, sampleCount: UInt32,
        rate: Rational, originMicros: Int64, keyframes: [Keyframe]
    ) {
        self.index = index
        self.streamIndex = streamIndex
        self.timeBase = timeBase
        self.decodeStartPTS = decodeStartPTS
        self.startPTS = startPTS
        self.endPTS = endPTS
        self.firstSample = firstSample
        self.sampleCount = sampleCount
        self.rate = rate
        self.originMicros = originMicros
        self.keyframes = keyframes
    }
}
