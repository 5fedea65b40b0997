import FrameCore

/// A job's segments and the total number of samples they produce.
public struct SegmentPlan: Sendable, Hashable, Codable {
    public var segments: [SegmentSpec]
    /// Samples over all segments; they are numbered `0 ..< totalSamples`.
    public var totalSamples: UInt32
}

/// Cuts a probed video into segments of about `segmentSeconds` that start on keyframes and
/// assigns each the global sample numbers it must produce.
///
/// Why the sample ranges can be computed without decoding: a segment owns the frames with
/// `startPTS <= pts < endPTS`, and by the ``SampleClock`` rule sample `k` is the last frame
/// whose slot is `<= k`. That frame lies in segment `j` exactly when `slot(start_j) <= k <
/// slot(start_{j+1})` (the boundary keyframe is the earliest frame of its segment), so each
/// segment's samples are `[slot(start_j), slot(start_{j+1}))` clipped to
/// `[firstSlot, endSlot)`. Segments that would produce no sample are merged into their
/// predecessor so no lease is wasted. A video without keyframes in its index gets one segment.
public enum SegmentPlanner {
    /// Highest accepted output rate; more is a typo, not a request.
    public static let maxRate = 1000.0

    /// The segments for `info` at `rate`, in order; their samples are `0 ..< total` once each.
    public static func plan(_ info: MediaInfo, rate: Rational, segmentSeconds: Double = 10) throws(MediaError) -> [SegmentSpec] {
        try makePlan(info, rate: rate, segmentSeconds: segmentSeconds).segments
    }

    /// How many samples the whole video yields at `rate`.
    public static func sampleCount(_ info: MediaInfo, rate: Rational) throws(MediaError) -> UInt32 {
        let clock = try clock(info, rate: rate)
        return try count(firstSlot: clock.slot(info.firstPTS), endSlot: endSlot(info, clock))
    }

    /// The lowest rate of the form 1/k (one frame every k seconds) or n (frames per second) that
    /// yields at least one frame from `info`; nil when even the highest accepted rate yields none.
    /// Used to tell a user whose rate picks no frame what would work.
    public static func lowestRateWithFrames(_ info: MediaInfo) -> Rational? {
        let twice = info.videoEndSeconds * 2
        let longest = twice.isFinite ? max(1, Int32(min(3600 * 24, max(0, twice.rounded(.up))))) : 1
        for k in stride(from: longest, through: 1, by: -1) {
            let rate = Rational(1, k)
            if let n = try? sampleCount(info, rate: rate), n > 0 { return rate }
        }
        for n in 2...Int32(maxRate) {
            let rate = Rational(n, 1)
            if let count = try? sampleCount(info, rate: rate), count > 0 { return rate }
        }
        return nil
    }

    /// The segments and the total sample count.
    public static func makePlan(_ info: MediaInfo, rate: Rational, segmentSeconds: Double = 10) throws(MediaError) -> SegmentPlan {
        guard segmentSeconds.isFinite, segmentSeconds > 0 else {
            throw MediaError(.invalidOptions, "segment length must be a positive number of seconds")
        }
        let clock = try clock(info, rate: rate)
        let firstSlot = clock.slot(info.firstPTS)
        let endSlot = endSlot(info, clock)
        let total = try count(firstSlot: firstSlot, endSlot: endSlot)
        let clamp = { (slot: Int64) in min(max(slot, firstSlot), max(endSlot, firstSlot)) }

        // Boundaries: the first frame, then keyframes at least `segmentSeconds` apart.
        let allKeyframes = uniqueKeyframes(info)
        let keyframes = allKeyframes.filter { $0.pts >= info.firstPTS }
        // The last keyframe before the first frame (edit lists) is where segment 0 decodes from.
        let lead = allKeyframes.last { $0.pts < info.firstPTS }
        let span = max(Int64(1), Int64((segmentSeconds * info.timeBase.doubleValue.reciprocal).rounded(.up)))
        var starts: [Int64] = [info.firstPTS]
        for kf in keyframes where kf.pts > info.firstPTS && kf.pts - starts.last! >= span {
            starts.append(kf.pts)
        }
        // Drop boundaries that would leave a segment without samples.
        var kept: [Int64] = [starts[0]]
        for i in 1..<starts.count where clamp(clock.slot(starts[i])) > clamp(clock.slot(kept.last!)) {
            kept.append(starts[i])
        }
        if kept.count > 1, clamp(clock.slot(kept.last!)) >= max(endSlot, firstSlot) {
            kept.removeLast()  // a trailing segment after the last sample
        }

        var segments: [SegmentSpec] = []
        for (i, start) in kept.enumerated() {
            let end = i + 1 < kept.count ? kept[i + 1] : Int64.max
            let lo = i == 0 ? firstSlot : clamp(clock.slot(start))
            let hi = i + 1 < kept.count ? clamp(clock.slot(end)) : max(endSlot, firstSlot)
            var own = keyframes.filter { $0.pts >= start && $0.pts < end }
            if i == 0, let lead { own.insert(lead, at: 0) }
            segments.append(SegmentSpec(
                index: UInt32(i), streamIndex: UInt32(info.streamIndex), timeBase: info.timeBase,
                decodeStartPTS: min(own.first?.pts ?? start, start), startPTS: start, endPTS: end,
                firstSample: UInt32(lo - firstSlot), sampleCount: UInt32(hi - lo),
                rate: rate, originMicros: info.startTimeMicros, keyframes: own))
        }
        return SegmentPlan(segments: segments, totalSamples: total)
    }

    static func clock(_ info: MediaInfo, rate: Rational) throws(MediaError) -> SampleClock {
        guard rate.num > 0, rate.den > 0, rate.doubleValue <= maxRate else {
            throw MediaError(.invalidRate, "rate must be between 0 and \(Int(maxRate)) frames per second, got \(rate)")
        }
        return try SampleClock(rate: rate, timeBase: info.timeBase, originMicros: info.startTimeMicros)
    }

    static func endSlot(_ info: MediaInfo, _ clock: SampleClock) -> Int64 {
        clock.endSlot(lastPTS: info.lastPTS, duration: info.lastDuration)
    }

    static func count(firstSlot: Int64, endSlot: Int64) throws(MediaError) -> UInt32 {
        let n = max(0, endSlot - firstSlot)
        guard n <= Int64(UInt32.max) else { throw MediaError(.invalidRate, "the rate yields too many frames (\(n))") }
        return UInt32(n)
    }

    /// Keyframes sorted by time without duplicates.
    static func uniqueKeyframes(_ info: MediaInfo) -> [Keyframe] {
        var result: [Keyframe] = []
        for kf in info.keyframes.sorted(by: { $0.pts < $1.pts }) {
            if result.last?.pts != kf.pts { result.append(kf) }
        }
        return result
    }
}

extension Double {
    fileprivate var reciprocal: Double { 1 / self }
}
