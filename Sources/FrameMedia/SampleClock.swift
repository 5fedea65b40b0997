import FrameCore

/// Decides which source frame each output sample is, exactly as FFmpeg 5.1's `fps` filter
/// does behind `ffmpeg -i IN -vf fps=R`.
///
/// The rule, with `tb` the video stream's time base, `R` the output rate and `S` the
/// container start time (`AVFormatContext.start_time`, which the ffmpeg tool subtracts from
/// every timestamp before filtering, rescaled to `tb` with rounding to nearest):
///
/// * A frame with timestamp `t` falls in **slot** `round((t - S) * tb * R)`, rounded to
///   nearest with halves away from zero (`AV_ROUND_NEAR_INF`, the filter's default).
/// * Output starts at the first frame's slot; that slot is sample 0 and slot `s` is sample
///   `s - firstSlot`.
/// * Slot `k` shows the **last** frame whose slot is `<= k`: a frame is replaced by any later
///   frame of the same or an earlier slot, and repeated for slots no frame falls in.
/// * The stream ends at `E = lastPTS + lastDuration` (the tool's "next pts" after the last
///   frame, kept in microseconds in between); slots `>= round((E - S) * tb * R)` are not output.
///
/// So at 1 fps on 30 fps input the samples are frames 14, 44, 74, ... and at 0.1 fps the
/// first sample is the frame just before 5 s. Arithmetic is exact (128-bit), so rates like
/// 1/3 or 30000/1001 agree with FFmpeg to the frame.
public struct SampleClock: Sendable, Hashable {
    public let rate: Rational
    public let timeBase: Rational
    /// `S` in stream time base units.
    public let originPTS: Int64

    /// A clock for `rate` on a stream with `timeBase` in a container starting at `originMicros`.
    public init(rate: Rational, timeBase: Rational, originMicros: Int64) throws(MediaError) {
        guard rate.num > 0, rate.den > 0 else { throw MediaError(.invalidRate, "rate must be positive, got \(rate)") }
        guard timeBase.num > 0, timeBase.den > 0 else {
            throw MediaError(.corruptMedia, "invalid stream time base \(timeBase)")
        }
        self.rate = rate
        self.timeBase = timeBase
        self.originPTS = Self.rescale(originMicros, Int64(timeBase.den), 1_000_000 * Int64(timeBase.num))
    }

    /// The slot (output timestamp in units of 1/R) a frame with timestamp `pts` falls in.
    public func slot(_ pts: Int64) -> Int64 {
        let b = Int64(timeBase.num) * Int64(rate.num)
        let c = Int64(timeBase.den) * Int64(rate.den)
        return Self.rescale(pts &- originPTS, b, c)
    }

    /// The first slot past the end of a stream whose last frame is at `lastPTS` lasting `duration`.
    ///
    /// Mirrors the ffmpeg tool, which accumulates the end in microseconds and converts it back
    /// to the stream time base before the filter rescales it.
    public func endSlot(lastPTS: Int64, duration: Int64) -> Int64 {
        let tbNum = Int64(timeBase.num), tbDen = Int64(timeBase.den)
        let startMicros = Self.rescale(lastPTS &- originPTS, tbNum * 1_000_000, tbDen)
        let durationMicros = Self.rescale(duration, tbNum * 1_000_000, tbDen)
        let endPTS = Self.rescale(startMicros + durationMicros, tbDen, tbNum * 1_000_000)
        return Self.rescale(endPTS, tbNum * Int64(rate.num), tbDen * Int64(rate.den))
    }

    /// `a * b / c` rounded to nearest, halves away from zero (`av_rescale_rnd` with
    /// `AV_ROUND_NEAR_INF`), exact for all 64-bit inputs; `c` must be positive.
    static func rescale(_ a: Int64, _ b: Int64, _ c: Int64) -> Int64 {
        let product = Int128(a) * Int128(b)
        let divisor = Int128(c)
        let magnitude = (product.magnitude + divisor.magnitude / 2) / divisor.magnitude
        let rounded = product < 0 ? -Int128(magnitude) : Int128(magnitude)
        return Int64(clamping: rounded)
    }
}

import CFFmpeg

extension SampleClock {
    /// FFmpeg's own `av_rescale_rnd(a, b, c, AV_ROUND_NEAR_INF)`, to check ``rescale(_:_:_:)`` against.
    static func ffmpegRescale(_ a: Int64, _ b: Int64, _ c: Int64) -> Int64 {
        av_rescale_rnd(a, b, c, AV_ROUND_NEAR_INF)
    }
}
