import CFFmpeg
import FrameCore

/// Opens a video decoder for a stream, the same way for the probe and for segment decoding,
/// so the frame timestamps the probe learns from a decoder are the ones segments see.
///
/// Single-threaded unless asked: parallelism comes from segments, and `skip_frame` must apply
/// to exactly the packet it was set for.
enum VideoDecoderContext {
    static func open(_ st: UnsafeMutablePointer<AVStream>, threads: Int32 = 1) throws(MediaError) -> UnsafeMutablePointer<AVCodecContext> {
        let par = st.pointee.codecpar!
        guard let codec = avcodec_find_decoder(par.pointee.codec_id) else {
            throw MediaError(.unsupportedCodec, "no decoder for \(String(cString: avcodec_get_name(par.pointee.codec_id)))")
        }
        var ctx = avcodec_alloc_context3(codec)
        guard let c = ctx else { throw MediaError(.internalError, "out of memory") }
        guard avcodec_parameters_to_context(c, par) >= 0 else {
            avcodec_free_context(&ctx)
            throw MediaError(.corruptMedia, "invalid codec parameters")
        }
        c.pointee.pkt_timebase = st.pointee.time_base
        c.pointee.thread_count = threads
        if threads > 1 { c.pointee.thread_type = FF_THREAD_SLICE }
        let r = avcodec_open2(c, codec, nil)
        guard r >= 0 else {
            avcodec_free_context(&ctx)
            throw MediaError(.unsupportedCodec, "cannot open the decoder: \(ffErrorString(r))")
        }
        return c
    }
}

/// The timestamps the ffmpeg tool gives frames that leave the decoder at the end of the
/// stream without one.
///
/// Containers without presentation times (AVI: decode timestamps only) let the decoder label
/// each frame with the decode timestamp of the packet that pushed it out, so the last
/// `delay` frames (the reorder depth) come out of the final drain with none. The ffmpeg tool
/// (5.1, `decode_video`) then uses its running "next dts": the end of the last packet
/// (`dts + duration`, kept in microseconds), advanced by one frame period (from the
/// decoder's frame rate) per further drained frame. Those frames are real frames to the `fps`
/// filter (they can be samples, and the last one sets the end bound), so the probe and the
/// segment walk number them the same way through this one rule.
struct DrainTimestamps: Sendable, Hashable {
    let timeBase: Rational
    /// The last packet's `dts + duration` in microseconds.
    let endMicros: Int64
    /// One frame period in microseconds, as the ffmpeg tool computes it.
    let periodMicros: Int64

    /// `lastDTS` and `lastDuration` are the last packet's (stream time base); the period comes
    /// from `codec`'s frame rate, falling back to `streamRate`.
    init(timeBase: Rational, lastDTS: Int64, lastDuration: Int64, codec: UnsafeMutablePointer<AVCodecContext>, streamRate: Rational) {
        self.timeBase = timeBase
        let tbNum = Int64(timeBase.num), tbDen = Int64(timeBase.den)
        var rate = Rational(codec.pointee.framerate)
        var ticks = Int64(max(1, codec.pointee.ticks_per_frame))
        if rate.num <= 0 || rate.den <= 0 {
            rate = streamRate
            ticks = 1
        }
        let period: Int64 = rate.num > 0 && rate.den > 0
            ? 1_000_000 * Int64(rate.den) * ticks / Int64(rate.num) / ticks
            : SampleClock.rescale(1, tbNum * 1_000_000, tbDen)
        periodMicros = max(1, period)
        let duration = lastDuration > 0 ? SampleClock.rescale(lastDuration, tbNum * 1_000_000, tbDen) : periodMicros
        endMicros = SampleClock.rescale(lastDTS, tbNum * 1_000_000, tbDen) + duration
    }

    /// The timestamp of the `n`-th frame (from 0) the final drain outputs without one.
    func timestamp(_ n: Int) -> Int64 {
        let tbNum = Int64(timeBase.num), tbDen = Int64(timeBase.den)
        return SampleClock.rescale(endMicros + Int64(n) * periodMicros, tbDen, tbNum * 1_000_000)
    }

    /// The duration of such a frame in stream time base units (for the end bound).
    func frameDuration(lastDuration: Int64) -> Int64 {
        if lastDuration > 0 { return lastDuration }
        return max(1, SampleClock.rescale(periodMicros, Int64(timeBase.den), Int64(timeBase.num) * 1_000_000))
    }
}
