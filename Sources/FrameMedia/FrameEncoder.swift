import CFFmpeg
import FrameCore

/// Turns decoded frames into PNG or JPEG files as a player shows them: converted with
/// libswscale (bicubic, full range), rotated by the display matrix, optionally downscaled
/// into a bounding box, and encoded: PNG by ``PNGWriter`` (libdeflate; the tool's pixels,
/// faster than libavcodec's `png`), JPEG with libavcodec's `mjpeg` encoder.
///
/// The JPEG path copies what the ffmpeg tool does for `-q:v Q frame_%04d.jpg`: swscale to
/// `yuvj420p`, `AV_CODEC_FLAG_QSCALE` with `global_quality = Q * FF_QP2LAMBDA` and the same
/// quality on the frame, so unrotated, unscaled JPEGs are byte-identical to the tool's.
/// Contexts are cached per output shape because a segment encodes many frames alike.
final class FrameEncoder {
    private var sws: OpaquePointer?
    private var encoder: UnsafeMutablePointer<AVCodecContext>?
    private var encoderKey: EncoderKey?
    private var converted: UnsafeMutablePointer<AVFrame>?
    private var rotated: UnsafeMutablePointer<AVFrame>?
    private var packet: UnsafeMutablePointer<AVPacket>?
    private var png: PNGWriter?
    /// Seconds spent converting (scale, colour, rotation) and compressing, for profiles.
    private(set) var convertSeconds: Double = 0
    private(set) var encodeSeconds: Double = 0
    /// Encoders refuse non-increasing timestamps, so each picture gets the next one.
    private var nextPTS: Int64 = 0
    /// Convert `yuv420p` to the JPEG path's `yuvj420p` by table (``RangeTables``) where swscale
    /// would only map each sample (same size); tests switch it off to compare.
    var useRangeTables = true
    /// Pictures converted by table rather than by swscale.
    private(set) var tableConversions = 0
    /// Tables per source format and colour properties (nil: swscale is not a per-sample map there).
    private var rangeTables: [RangeKey: RangeTables?] = [:]

    private struct RangeKey: Hashable {
        var format: Int32, range: UInt32, space: UInt32
    }

    private struct EncoderKey: Equatable {
        var format: ImageFormat, width: Int32, height: Int32, quality: UInt8, pixel: Int32
    }

    init() throws(MediaError) {
        converted = av_frame_alloc()
        rotated = av_frame_alloc()
        packet = av_packet_alloc()
        guard converted != nil, rotated != nil, packet != nil else { throw MediaError(.internalError, "out of memory") }
    }

    deinit {
        sws_freeContext(sws)
        avcodec_free_context(&encoder)
        av_frame_free(&converted)
        av_frame_free(&rotated)
        av_packet_free(&packet)
    }

    /// The output size for a `width`x`height` picture shown with `rotation` and bounded by `options`.
    static func outputSize(width: Int, height: Int, rotation: Int, options: OutputOptions) -> (width: Int, height: Int) {
        options.outputSize(width: width, height: height, rotation: rotation)
    }

    func encode(_ frame: UnsafeMutablePointer<AVFrame>, rotation: Int, options: OutputOptions) throws(MediaError) -> (data: [UInt8], width: Int, height: Int) {
        let (outW, outH) = Self.outputSize(width: Int(frame.pointee.width), height: Int(frame.pointee.height),
                                           rotation: rotation, options: options)
        // Scale first (in the unrotated orientation), then rotate the smaller picture.
        let scaledW = Int32(rotation % 180 == 0 ? outW : outH)
        let scaledH = Int32(rotation % 180 == 0 ? outH : outW)
        let dstFormat = Self.pixelFormat(for: options.format, source: AVPixelFormat(rawValue: frame.pointee.format))
        let converting = Stopwatch()
        try convert(frame, width: scaledW, height: scaledH, format: dstFormat)
        var picture = converted!
        if rotation != 0 {
            try rotate(converted!, by: rotation, into: rotated!)
            picture = rotated!
        }
        convertSeconds += converting.seconds
        let encoding = Stopwatch()
        defer { encodeSeconds += encoding.seconds }
        return (try compress(picture, options: options), outW, outH)
    }

    static func pixelFormat(for format: ImageFormat, source: AVPixelFormat) -> AVPixelFormat {
        switch format {
        case .jpeg:
            return AV_PIX_FMT_YUVJ420P
        case .png:
            let hasAlpha = av_pix_fmt_desc_get(source).map { $0.pointee.flags & UInt64(AV_PIX_FMT_FLAG_ALPHA) != 0 } ?? false
            return hasAlpha ? AV_PIX_FMT_RGBA : AV_PIX_FMT_RGB24
        }
    }

    private func convert(_ frame: UnsafeMutablePointer<AVFrame>, width: Int32, height: Int32, format: AVPixelFormat) throws(MediaError) {
        let srcFormat = AVPixelFormat(rawValue: frame.pointee.format)
        if useRangeTables, width == frame.pointee.width, height == frame.pointee.height, RangeTables.applies(from: srcFormat, to: format),
           let tables = try rangeTables(like: frame) {
            let out = converted!
            try tables.convert(frame, into: out)
            out.pointee.color_range = AVCOL_RANGE_JPEG
            out.pointee.sample_aspect_ratio = frame.pointee.sample_aspect_ratio
            tableConversions += 1
            return
        }
        try scale(frame, into: converted!, width: width, height: height, format: format)
    }

    /// The tables for pictures like `frame`, read from swscale the first time.
    private func rangeTables(like frame: UnsafeMutablePointer<AVFrame>) throws(MediaError) -> RangeTables? {
        let key = RangeKey(format: frame.pointee.format, range: frame.pointee.color_range.rawValue, space: frame.pointee.colorspace.rawValue)
        if let known = rangeTables[key] { return known }
        let derived = try RangeTables.derive(like: frame) { src, dst throws(MediaError) in
            try scale(src, into: dst, width: src.pointee.width, height: src.pointee.height, format: AV_PIX_FMT_YUVJ420P)
        }
        rangeTables[key] = .some(derived)
        return derived
    }

    /// Converts with swscale, the way the ffmpeg tool's scale filter does.
    private func scale(_ frame: UnsafeMutablePointer<AVFrame>, into out: UnsafeMutablePointer<AVFrame>, width: Int32, height: Int32,
                       format: AVPixelFormat) throws(MediaError) {
        let srcFormat = AVPixelFormat(rawValue: frame.pointee.format)
        sws = sws_getCachedContext(sws, frame.pointee.width, frame.pointee.height, srcFormat,
                                   width, height, format, SWS_BICUBIC, nil, nil, nil)
        guard let sws else { throw MediaError(.encodeFailed, "cannot convert from pixel format \(frame.pointee.format)") }
        // Same colour handling as the ffmpeg tool's scale filter: the frame's matrix and range
        // in, full range out (yuvj formats and RGB are full range).
        var invTable: UnsafeMutablePointer<Int32>?, table: UnsafeMutablePointer<Int32>?
        var srcRange: Int32 = 0, dstRange: Int32 = 0, brightness: Int32 = 0, contrast: Int32 = 0, saturation: Int32 = 0
        if sws_getColorspaceDetails(sws, &invTable, &srcRange, &table, &dstRange, &brightness, &contrast, &saturation) >= 0 {
            let space = frame.pointee.colorspace
            let inTable = sws_getCoefficients(space == AVCOL_SPC_UNSPECIFIED || space == AVCOL_SPC_RGB ? SWS_CS_DEFAULT : Int32(space.rawValue))
            if frame.pointee.color_range != AVCOL_RANGE_UNSPECIFIED {
                srcRange = frame.pointee.color_range == AVCOL_RANGE_JPEG ? 1 : 0
            }
            sws_setColorspaceDetails(sws, inTable, srcRange, table, 1, brightness, contrast, saturation)
        }
        if out.pointee.width != width || out.pointee.height != height || out.pointee.format != format.rawValue {
            av_frame_unref(out)
            out.pointee.width = width
            out.pointee.height = height
            out.pointee.format = format.rawValue
            guard av_frame_get_buffer(out, 0) >= 0 else { throw MediaError(.internalError, "out of memory") }
        }
        guard av_frame_make_writable(out) >= 0 else { throw MediaError(.internalError, "out of memory") }
        let r = sws_scale_frame(sws, out, frame)
        guard r >= 0 else { throw MediaError(.encodeFailed, "pixel conversion failed: \(ffErrorString(r))") }
        out.pointee.color_range = format == AV_PIX_FMT_YUVJ420P ? AVCOL_RANGE_JPEG : AVCOL_RANGE_UNSPECIFIED
        out.pointee.sample_aspect_ratio = frame.pointee.sample_aspect_ratio
    }

    /// Rotates every plane of an 8-bit picture clockwise by 90, 180 or 270 degrees.
    private func rotate(_ src: UnsafeMutablePointer<AVFrame>, by degrees: Int, into dst: UnsafeMutablePointer<AVFrame>) throws(MediaError) {
        let quarter = degrees % 180 != 0
        let w = quarter ? src.pointee.height : src.pointee.width
        let h = quarter ? src.pointee.width : src.pointee.height
        av_frame_unref(dst)
        dst.pointee.width = w
        dst.pointee.height = h
        dst.pointee.format = src.pointee.format
        guard av_frame_get_buffer(dst, 0) >= 0 else { throw MediaError(.internalError, "out of memory") }
        let isRGB = src.pointee.format != AV_PIX_FMT_YUVJ420P.rawValue
        let bytesPerPixel = src.pointee.format == AV_PIX_FMT_RGBA.rawValue ? 4 : (isRGB ? 3 : 1)
        let planes = isRGB ? 1 : 3
        let srcData = [src.pointee.data.0, src.pointee.data.1, src.pointee.data.2]
        let srcLines = [src.pointee.linesize.0, src.pointee.linesize.1, src.pointee.linesize.2]
        let dstData = [dst.pointee.data.0, dst.pointee.data.1, dst.pointee.data.2]
        let dstLines = [dst.pointee.linesize.0, dst.pointee.linesize.1, dst.pointee.linesize.2]
        for plane in 0..<planes {
            let chroma = plane > 0
            let sw = Int(chroma ? (src.pointee.width + 1) / 2 : src.pointee.width)
            let sh = Int(chroma ? (src.pointee.height + 1) / 2 : src.pointee.height)
            guard let s = srcData[plane], let d = dstData[plane] else { continue }
            let sl = Int(srcLines[plane]), dl = Int(dstLines[plane])
            for y in 0..<sh {
                for x in 0..<sw {
                    let (dx, dy): (Int, Int) = switch degrees {
                    case 90: (sh - 1 - y, x)
                    case 180: (sw - 1 - x, sh - 1 - y)
                    default: (y, sw - 1 - x)
                    }
                    let from = s + y * sl + x * bytesPerPixel
                    let to = d + dy * dl + dx * bytesPerPixel
                    for b in 0..<bytesPerPixel { to[b] = from[b] }
                }
            }
        }
        dst.pointee.color_range = src.pointee.color_range
        let sar = src.pointee.sample_aspect_ratio
        dst.pointee.sample_aspect_ratio = quarter ? AVRational(num: sar.den, den: sar.num) : sar
    }

    private func compress(_ picture: UnsafeMutablePointer<AVFrame>, options: OutputOptions) throws(MediaError) -> [UInt8] {
        if options.format == .png { return try compressPNG(picture) }
        let key = EncoderKey(format: options.format, width: picture.pointee.width, height: picture.pointee.height,
                             quality: options.quality, pixel: picture.pointee.format)
        if encoderKey != key || encoder == nil {
            avcodec_free_context(&encoder)
            encoder = try Self.openEncoder(key, sar: picture.pointee.sample_aspect_ratio)
            encoderKey = key
        }
        let ctx = encoder!
        picture.pointee.pts = nextPTS
        nextPTS += 1
        if options.format == .jpeg { picture.pointee.quality = ctx.pointee.global_quality }
        var r = avcodec_send_frame(ctx, picture)
        guard r >= 0 else { throw MediaError(.encodeFailed, "encoder rejected the picture: \(ffErrorString(r))") }
        r = avcodec_receive_packet(ctx, packet)
        guard r >= 0, let pkt = packet else { throw MediaError(.encodeFailed, "encoding failed: \(ffErrorString(r))") }
        defer { av_packet_unref(pkt) }
        return Array(UnsafeBufferPointer(start: pkt.pointee.data, count: Int(pkt.pointee.size)))
    }

    private func compressPNG(_ picture: UnsafeMutablePointer<AVFrame>) throws(MediaError) -> [UInt8] {
        let writer: PNGWriter
        if let png { writer = png } else { writer = try PNGWriter(); png = writer }
        guard let pixels = picture.pointee.data.0 else { throw MediaError(.encodeFailed, "PNG: picture has no pixels") }
        let sar = picture.pointee.sample_aspect_ratio
        return try writer.encode(pixels: pixels, lineSize: Int(picture.pointee.linesize.0), width: Int(picture.pointee.width),
                                 height: Int(picture.pointee.height),
                                 channels: picture.pointee.format == AV_PIX_FMT_RGBA.rawValue ? 4 : 3,
                                 aspect: (sar.num, sar.den))
    }

    private static func openEncoder(_ key: EncoderKey, sar: AVRational) throws(MediaError) -> UnsafeMutablePointer<AVCodecContext> {
        guard let codec = avcodec_find_encoder(AV_CODEC_ID_MJPEG), var ctx = Optional(avcodec_alloc_context3(codec)), let c = ctx else {
            throw MediaError(.encodeFailed, "no \(key.format) encoder available")
        }
        c.pointee.width = key.width
        c.pointee.height = key.height
        c.pointee.pix_fmt = AVPixelFormat(rawValue: key.pixel)
        c.pointee.time_base = AVRational(num: 1, den: 25)
        c.pointee.sample_aspect_ratio = sar
        c.pointee.thread_count = 1
        c.pointee.color_range = AVCOL_RANGE_JPEG
        c.pointee.flags |= AV_CODEC_FLAG_QSCALE
        c.pointee.global_quality = Int32(key.quality) * ff_qp2lambda()
        let r = avcodec_open2(c, codec, nil)
        guard r >= 0 else {
            avcodec_free_context(&ctx)
            throw MediaError(.encodeFailed, "cannot open the \(key.format) encoder: \(ffErrorString(r))")
        }
        return c
    }
}
