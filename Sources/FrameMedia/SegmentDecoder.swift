import CFFmpeg
import FrameCore

/// Decodes the samples of one segment at a time from a ``ByteSource`` and encodes them.
///
/// It opens the container once; each ``run(_:options:isCancelled:emit:)`` seeks to the
/// keyframe before the segment's first sample, decodes forward, skips frames that cannot be
/// samples and seeks again across gaps (see `SegmentWalk`). One instance is used from one
/// thread at a time (it owns FFmpeg contexts); run segments in parallel with one decoder each.
/// Decoding is single-threaded per instance because parallelism comes from segments, and
/// because `skip_frame` must apply to exactly the packet it was set for.
public final class SegmentDecoder {
    private let input: InputContainer
    private var codecs: [Int: UnsafeMutablePointer<AVCodecContext>] = [:]
    private var encoder: FrameEncoder?
    private var fresh = true
    private let threads: Int32
    /// Work-saving switches (tests turn them off to measure them).
    var tuning = SegmentWalk.Tuning()
    /// Whether the JPEG path converts by table where that is exact (``RangeTables``).
    var useRangeTables = true
    /// Pictures the encoder converted by table so far.
    var tableConversions: Int { encoder?.tableConversions ?? 0 }

    /// Opens `source`; `formatHint` may be a file name or an extension.
    public init(source: any ByteSource, formatHint: String? = nil, threads: Int = 1) throws(MediaError) {
        input = try InputContainer(source: source, formatHint: formatHint)
        self.threads = Int32(max(1, threads))
    }

    /// Opens a local file.
    public convenience init(path: String) throws(MediaError) {
        try self.init(source: FileByteSource(path: path), formatHint: path)
    }

    deinit {
        for (_, ctx) in codecs {
            var c: UnsafeMutablePointer<AVCodecContext>? = ctx
            avcodec_free_context(&c)
        }
    }

    /// Decodes `spec`'s samples, encoding each with `options` and handing it to `emit` in sample order.
    public func run(_ spec: SegmentSpec, options: OutputOptions, isCancelled: @escaping @Sendable () -> Bool = { false },
                    emit: (EncodedFrame) throws -> Void) throws(MediaError) -> SegmentStats {
        let options = try Self.validate(options)
        let encoder: FrameEncoder
        if let existing = self.encoder { encoder = existing } else { encoder = try FrameEncoder() }
        self.encoder = encoder
        encoder.useRangeTables = useRangeTables
        let rotation = MediaProbe.clockwiseRotation(try stream(spec))
        let tb = spec.timeBase
        let (convertBefore, encodeBefore) = (encoder.convertSeconds, encoder.encodeSeconds)
        var deliverSeconds = 0.0
        var stats = try Self.typed {
          try withoutActuallyEscaping(emit) { emit throws(MediaError) in
            try walk(spec, isCancelled: isCancelled) { frame, pts, samples throws(MediaError) in
                let image = try encoder.encode(frame, rotation: rotation, options: options)
                let seconds = Self.seconds(pts, tb, spec.originMicros)
                let delivering = Stopwatch()
                defer { deliverSeconds += delivering.seconds }
                for sample in samples {
                    try Self.deliver(emit, EncodedFrame(sampleIndex: sample, pts: pts, seconds: seconds, width: image.width,
                                                        height: image.height, format: options.format, data: image.data))
                }
            }
          }
        }
        stats.convertSeconds = encoder.convertSeconds - convertBefore
        stats.encodeSeconds = encoder.encodeSeconds - encodeBefore
        stats.deliverSeconds = deliverSeconds
        // The walk's time less what its sink spent: demuxing and decoding.
        stats.decodeSeconds = max(0, stats.decodeSeconds - stats.convertSeconds - stats.encodeSeconds - deliverSeconds)
        return stats
    }

    /// Decodes `spec`'s samples and reports the MD5 of each raw decoded picture, as
    /// `ffmpeg -f framemd5` would: the conformance check against the ffmpeg tool.
    public func runDigests(_ spec: SegmentSpec, isCancelled: @escaping @Sendable () -> Bool = { false },
                           emit: (SampleDigest) throws -> Void) throws(MediaError) -> SegmentStats {
        let tb = spec.timeBase
        return try Self.typed {
          try withoutActuallyEscaping(emit) { emit throws(MediaError) in
            try walk(spec, isCancelled: isCancelled) { frame, pts, samples throws(MediaError) in
                let md5 = try PictureDigest.md5(frame)
                let seconds = Self.seconds(pts, tb, spec.originMicros)
                for sample in samples {
                    try Self.deliver(emit, SampleDigest(sampleIndex: sample, pts: pts, seconds: seconds, md5: md5))
                }
            }
          }
        }
    }

    /// Narrows an untyped throw (from `withoutActuallyEscaping`) back to ``MediaError``.
    private static func typed<T>(_ body: () throws -> T) throws(MediaError) -> T {
        do { return try body() } catch let error as MediaError { throw error } catch {
            let coded = error.asFrameFlowError
            throw MediaError(coded.code, coded.message)
        }
    }

    private static func deliver<T>(_ emit: (T) throws -> Void, _ value: T) throws(MediaError) {
        do { try emit(value) } catch let error as MediaError { throw error } catch {
            let coded = error.asFrameFlowError
            throw MediaError(coded.code, coded.message)
        }
    }

    static func seconds(_ pts: Int64, _ tb: Rational, _ originMicros: Int64) -> Double {
        Double(pts) * tb.doubleValue - Double(originMicros) / 1e6
    }

    static func validate(_ options: OutputOptions) throws(MediaError) -> OutputOptions {
        do { return try options.validated() } catch { throw MediaError(error.code, error.message) }
    }

    private func stream(_ spec: SegmentSpec) throws(MediaError) -> UnsafeMutablePointer<AVStream> {
        guard let st = input.stream(Int(spec.streamIndex)), st.pointee.codecpar.pointee.codec_type == AVMEDIA_TYPE_VIDEO else {
            throw MediaError(.noVideoStream, "stream \(spec.streamIndex) is not a video stream")
        }
        return st
    }

    private func walk(_ spec: SegmentSpec, isCancelled: @escaping @Sendable () -> Bool,
                      sink: @escaping SampleSink) throws(MediaError) -> SegmentStats {
        let st = try stream(spec)
        guard Rational(st.pointee.time_base) == spec.timeBase else {
            throw MediaError(.invalidOptions, "segment time base \(spec.timeBase) does not match the stream's")
        }
        let clock = try SampleClock(rate: spec.rate, timeBase: spec.timeBase, originMicros: spec.originMicros)
        let codec = try codecContext(Int(spec.streamIndex), st)
        input.selectOnly(stream: Int(spec.streamIndex))
        input.io.isCancelled = isCancelled
        input.io.sourceError = nil
        let bytesBefore = input.io.bytesRead
        defer { input.io.isCancelled = nil }
        let walk = try SegmentWalk(input: input, codec: codec, spec: spec, clock: clock, fresh: fresh, tuning: tuning,
                                   isCancelled: isCancelled, sink: sink)
        defer { fresh = walk.fresh }
        let watch = Stopwatch()
        try walk.run()
        var stats = walk.stats
        stats.decodeSeconds = max(0, watch.seconds - stats.seekSeconds)
        stats.bytesRead = input.io.bytesRead - bytesBefore
        return stats
    }

    private func codecContext(_ index: Int, _ st: UnsafeMutablePointer<AVStream>) throws(MediaError) -> UnsafeMutablePointer<AVCodecContext> {
        if let ctx = codecs[index] { return ctx }
        let c = try VideoDecoderContext.open(st, threads: threads)
        codecs[index] = c
        return c
    }
}
