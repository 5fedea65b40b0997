/// How far an extraction has got; delivered after every encoded frame.
public struct ExtractProgress: Sendable {
    public var framesDone: Int
    public var framesTotal: Int
    public var segmentsDone: Int
    public var segmentsTotal: Int
}
