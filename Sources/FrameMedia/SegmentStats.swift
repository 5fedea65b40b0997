/// What one segment run cost: frames the decoder produced, samples emitted, bytes read
/// from the source (including seeks' re-reads), so planners and benchmarks can see the work,
/// and where the thread's time went (seconds of wall time on the decoding thread).
public struct SegmentStats: Sendable, Hashable {
    public var decodedFrames: Int
    public var emittedFrames: Int
    public var bytesRead: Int64
    /// Times decoding jumped ahead to a keyframe instead of decoding the gap (by seeking, or
    /// by dropping read-ahead packets), including the initial positioning.
    public var seeks: Int
    /// Times the rest of a GOP was left undecoded: the last sample before the next sample's
    /// keyframe was in the decoder, so it was drained instead of fed further packets.
    public var gopTailsSkipped: Int
    /// Seeking and reading up to the keyframe sought.
    public var seekSeconds: Double
    /// Demuxing and decoding (everything else the walk did).
    public var decodeSeconds: Double
    /// Colour conversion, scaling and rotation of the samples.
    public var convertSeconds: Double
    /// Image encoding (PNG or JPEG).
    public var encodeSeconds: Double
    /// Handing frames to the caller (for `frameflow extract`: spooling them to disk).
    public var deliverSeconds: Double

    public init(decodedFrames: Int = 0, emittedFrames: Int = 0, bytesRead: Int64 = 0, seeks: Int = 0, gopTailsSkipped: Int = 0,
                seekSeconds: Double = 0, decodeSeconds: Double = 0, convertSeconds: Double = 0, encodeSeconds: Double = 0,
                deliverSeconds: Double = 0) {
        self.decodedFrames = decodedFrames
        self.emittedFrames = emittedFrames
        self.bytesRead = bytesRead
        self.seeks = seeks
        self.gopTailsSkipped = gopTailsSkipped
        self.seekSeconds = seekSeconds
        self.decodeSeconds = decodeSeconds
        self.convertSeconds = convertSeconds
        self.encodeSeconds = encodeSeconds
        self.deliverSeconds = deliverSeconds
    }

    /// Adds `other`'s counts and times (segments of one job).
    public mutating func add(_ other: SegmentStats) {
        decodedFrames += other.decodedFrames
        emittedFrames += other.emittedFrames
        bytesRead += other.bytesRead
        seeks += other.seeks
        gopTailsSkipped += other.gopTailsSkipped
        seekSeconds += other.seekSeconds
        decodeSeconds += other.decodeSeconds
        convertSeconds += other.convertSeconds
        encodeSeconds += other.encodeSeconds
        deliverSeconds += other.deliverSeconds
    }
}

/// Wall-clock stopwatch for the stage times (monotonic).
public struct Stopwatch: Sendable {
    private let start = ContinuousClock.now

    public init() {}

    public var seconds: Double {
        let d = ContinuousClock.now - start
        return Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    }
}
