import CFFmpeg
import FrameCore

/// Opens a video once, validates it and builds its ``MediaInfo`` with a keyframe index.
///
/// Container indexes are unreliable for planning (MP4 indexes by decode time, MKV cues load
/// lazily, MPEG-TS has none), so the probe makes one demux pass over the video stream's
/// packets, without decoding, recording each packet's presentation time, duration, key flag
/// and byte position. That pass also finds truncated files, whose packets run past the end.
public enum MediaProbe {
    /// Largest accepted width or height; anything bigger is a broken or hostile header.
    public static let maxDimension = 16384

    /// Probes a local file; the path's extension is used as a format hint.
    public static func probe(path: String) throws(MediaError) -> MediaInfo {
        let source = try FileByteSource(path: path)
        return try probe(source: source, formatHint: path)
    }

    /// Probes the bytes of `source`. `formatHint` may be a file name or an extension.
    public static func probe(source: any ByteSource, formatHint: String? = nil) throws(MediaError) -> MediaInfo {
        let input = try InputContainer(source: source, formatHint: formatHint)
        let ctx = input.ctx
        // An empty container (no streams at all, nothing to play) is a zero-length video.
        // A container that declares zero length and no streams is an empty recording;
        // streams missing without that declaration mean the header could not be read.
        guard ctx.pointee.nb_streams > 0 else {
            if ctx.pointee.duration == 0 { throw MediaError(.zeroDuration, "the file contains no streams") }
            throw MediaError(.corruptMedia, "the \(input.formatName) header lists no readable streams")
        }
        let index = try input.videoStreamIndex()
        let st = input.stream(index)!
        let par = st.pointee.codecpar.pointee

        let codecName = String(cString: avcodec_get_name(par.codec_id))
        guard par.codec_id != AV_CODEC_ID_NONE, avcodec_find_decoder(par.codec_id) != nil else {
            throw MediaError(.unsupportedCodec, "no decoder for the video codec \(codecName)")
        }
        let width = Int(par.width), height = Int(par.height)
        guard width <= maxDimension, height <= maxDimension, width >= 0, height >= 0 else {
            throw MediaError(.absurdDimensions, "video size \(width)x\(height) exceeds \(maxDimension)x\(maxDimension)")
        }
        let timeBase = Rational(st.pointee.time_base)
        guard timeBase.num > 0, timeBase.den > 0 else {
            throw MediaError(.corruptMedia, "invalid stream time base \(timeBase)")
        }
        let containerIndexKeyframes = Self.containerKeyframeCount(st)
        let startMicros = Self.toolStartMicros(ctx, st)

        input.selectOnly(stream: index)
        let scan = try KeyframeScan.run(input: input, streamIndex: index, fileSize: source.size)

        guard scan.frameCount > 0 else {
            throw MediaError(.zeroDuration, "the video stream has no frames")
        }
        guard width > 0, height > 0 else {
            throw MediaError(.absurdDimensions, "video size \(width)x\(height) is empty")
        }
        let frameRate = Rational(st.pointee.avg_frame_rate.num > 0 ? st.pointee.avg_frame_rate : st.pointee.r_frame_rate)
        var lastDuration = scan.lastDuration
        if lastDuration <= 0, frameRate.num > 0, frameRate.den > 0 {
            // The ffmpeg tool falls back to one frame period at the decoder's frame rate.
            lastDuration = SampleClock.rescale(Int64(frameRate.den), Int64(timeBase.den), Int64(frameRate.num) * Int64(timeBase.num))
        }
        guard scan.lastPTS + max(lastDuration, 0) > scan.firstPTS || scan.frameCount > 1 || lastDuration > 0 else {
            throw MediaError(.zeroDuration, "the video has zero duration")
        }

        let scannedSeconds = Double(scan.lastPTS + lastDuration - scan.firstPTS) * timeBase.doubleValue
        let expectedSeconds: Double? = if st.pointee.duration > 0 && st.pointee.duration != ff_nopts_value() {
            Double(st.pointee.duration) * timeBase.doubleValue
        } else if ctx.pointee.duration > 0 && ctx.pointee.duration != ff_nopts_value() {
            Double(ctx.pointee.duration) / 1e6
        } else { nil }
        // A file cut short keeps its header's duration; its packets stop early.
        // Containers disagree on whether their duration counts from zero or from the start
        // time (Matroska writes the last timestamp), so only a short span *and* end count.
        let scannedEnd = max(scannedSeconds, Double(scan.lastPTS + lastDuration) * timeBase.doubleValue)
        if let expectedSeconds, scannedEnd < 0.75 * expectedSeconds, expectedSeconds - scannedEnd > 0.5 {
            throw MediaError(.corruptMedia, String(
                format: "truncated: video data ends after %.2f s of %.2f s", scannedSeconds, expectedSeconds))
        }
        let durationSeconds = ctx.pointee.duration > 0 && ctx.pointee.duration != ff_nopts_value()
            ? Double(ctx.pointee.duration) / 1e6 : scannedSeconds
        guard durationSeconds > 0 else { throw MediaError(.zeroDuration, "the video has zero duration") }

        return MediaInfo(
            container: input.formatName,
            durationSeconds: durationSeconds,
            startTimeMicros: startMicros,
            streamIndex: index,
            codec: codecName,
            width: width, height: height,
            rotation: Self.clockwiseRotation(st),
            timeBase: timeBase,
            frameRate: frameRate.num > 0 && frameRate.den > 0 ? frameRate : Rational(0, 1),
            isVariableFrameRate: scan.isVariableFrameRate,
            frameCount: scan.frameCount,
            firstPTS: scan.firstPTS,
            lastPTS: scan.lastPTS,
            lastDuration: lastDuration,
            keyframes: scan.keyframes,
            containerIndexKeyframes: containerIndexKeyframes)
    }

    /// The start time the ffmpeg tool subtracts from every timestamp (the fps rule's origin):
    /// the container's `start_time` over all streams, audio included, except in formats with
    /// timestamp discontinuities (MPEG-TS/PS, FLV), where the tool (5.1, `process_input`)
    /// corrects it to the earliest start of the streams it reads. The reference command
    /// reads the video stream only (`-an`), so there it is the video's start when later.
    static func toolStartMicros(_ ctx: UnsafeMutablePointer<AVFormatContext>, _ st: UnsafeMutablePointer<AVStream>) -> Int64 {
        guard ctx.pointee.start_time != ff_nopts_value() else { return 0 }
        let start = ctx.pointee.start_time
        guard ctx.pointee.iformat.pointee.flags & AVFMT_TS_DISCONT != 0, st.pointee.pts_wrap_bits < 64,
              st.pointee.start_time != ff_nopts_value() else { return start }
        let tb = Rational(st.pointee.time_base)
        let videoStart = SampleClock.rescale(st.pointee.start_time, Int64(tb.num) * 1_000_000, Int64(tb.den))
        return max(start, videoStart)
    }

    /// Keyframe entries in the container's own index, as read at open time.
    static func containerKeyframeCount(_ st: UnsafeMutablePointer<AVStream>) -> Int {
        var count = 0
        for i in 0..<avformat_index_get_entries_count(st) {
            if let entry = avformat_index_get_entry(st, i), entry.pointee.flags & AVINDEX_KEYFRAME != 0 { count += 1 }
        }
        return count
    }

    /// The rotation a player applies (clockwise degrees), from the display matrix; the same
    /// normalisation as the ffmpeg tool's autorotate.
    static func clockwiseRotation(_ st: UnsafeMutablePointer<AVStream>) -> Int {
        let ccw = ff_stream_display_rotation(st)
        guard ccw.isFinite else { return 0 }
        var theta = -ccw
        theta -= 360 * (theta / 360 + 0.9 / 360).rounded(.down)
        let quarter = Int((theta / 90).rounded()) % 4
        return quarter * 90
    }
}
