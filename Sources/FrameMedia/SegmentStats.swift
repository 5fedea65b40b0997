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
