import CFFmpeg

/// The JPEG path's colour step, `yuv420p` to `yuvj420p` at the same size, by table lookup
/// instead of swscale's scaler: the same bytes for about a tenth of the time (1080p: ~10 ms
/// in swscale, ~1 ms here).
///
/// Why one table per plane is exact: unscaled, swscale's filters are the identity (one tap of
/// weight 1) and an 8-bit source is not dithered, so every output sample depends on its input
/// sample alone (range conversion in 15-bit fixed point, then rounding). The tables are read
/// from swscale itself, by sending a ramp of all 256 values through the encoder's own
/// conversion, and checked against it on a pseudo-random picture of odd size. Where that check
/// fails (a swscale that works differently), ``FrameEncoder`` keeps using swscale.
struct RangeTables: Equatable {
    /// Output value for each input value, luma and chroma (U and V map alike).
    var luma: [UInt8]
    var chroma: [UInt8]

    /// Whether a picture in `format` converted to `target` at the same size may use tables:
    /// 8-bit 4:2:0 in, `yuvj420p` out.
    static func applies(from format: AVPixelFormat, to target: AVPixelFormat) -> Bool {
        target == AV_PIX_FMT_YUVJ420P && (format == AV_PIX_FMT_YUV420P || format == AV_PIX_FMT_YUVJ420P)
    }

    /// Reads the tables from `convert` (which must write `yuvj420p` of the same size into its
    /// second argument) using pictures with `like`'s format and colour properties; nil when
    /// the conversion is not a per-sample mapping.
    static func derive(like frame: UnsafePointer<AVFrame>,
                       convert: (UnsafeMutablePointer<AVFrame>, UnsafeMutablePointer<AVFrame>) throws(MediaError) -> Void)
        throws(MediaError) -> RangeTables? {
        var ramp = try picture(width: 512, height: 2, like: frame) { _, x, _ in UInt8(truncatingIfNeeded: x) }
        defer { av_frame_free(&ramp) }
        var out = av_frame_alloc()
        defer { av_frame_free(&out) }
        guard let ramp, let out else { throw MediaError(.internalError, "out of memory") }
        try convert(ramp, out)
        guard out.pointee.width == 512, out.pointee.height == 2, let y = out.pointee.data.0, let u = out.pointee.data.1,
              let v = out.pointee.data.2 else { return nil }
        let lumaLine = Int(out.pointee.linesize.0)
        let luma = (0..<256).map { y[$0] }
        let chroma = (0..<256).map { u[$0] }
        // Both luma rows and both ramp halves, and V as U: otherwise the mapping is not per sample.
        for x in 0..<512 where y[x] != luma[x & 255] || y[lumaLine + x] != luma[x & 255] { return nil }
        for x in 0..<256 where v[x] != chroma[x] { return nil }
        let tables = RangeTables(luma: luma, chroma: chroma)

        // A picture of odd size with pseudo-random samples: tables and swscale must agree everywhere.
        var seed: UInt32 = 0x2545_F491
        var check = try picture(width: 67, height: 35, like: frame) { _, _, _ in
            seed = seed &* 1_664_525 &+ 1_013_904_223
            return UInt8(truncatingIfNeeded: seed >> 24)
        }
        defer { av_frame_free(&check) }
        var mapped = av_frame_alloc()
        defer { av_frame_free(&mapped) }
        guard let check, let mapped else { throw MediaError(.internalError, "out of memory") }
        try convert(check, out)
        try tables.convert(check, into: mapped)
        return Self.samePlanes(out, mapped) ? tables : nil
    }

    /// ``derive(like:convert:)`` for a conversion given per sample (from the sample's row, its
    /// index and the plane's width) on `yuv420p` pictures: how tests check the check.
    static func derive(mappingRows sample: (UnsafePointer<UInt8>, Int, Int) -> UInt8) throws(MediaError) -> RangeTables? {
        var like = av_frame_alloc()
        defer { av_frame_free(&like) }
        guard let like else { throw MediaError(.internalError, "out of memory") }
        like.pointee.format = AV_PIX_FMT_YUV420P.rawValue
        return try derive(like: like) { src, dst throws(MediaError) in
            av_frame_unref(dst)
            dst.pointee.width = src.pointee.width
            dst.pointee.height = src.pointee.height
            dst.pointee.format = AV_PIX_FMT_YUVJ420P.rawValue
            guard av_frame_get_buffer(dst, 0) >= 0 else { throw MediaError(.internalError, "out of memory") }
            let w = Int(src.pointee.width), h = Int(src.pointee.height)
            let s = [(src.pointee.data.0, src.pointee.linesize.0), (src.pointee.data.1, src.pointee.linesize.1),
                     (src.pointee.data.2, src.pointee.linesize.2)]
            let d = [(dst.pointee.data.0, dst.pointee.linesize.0), (dst.pointee.data.1, dst.pointee.linesize.1),
                     (dst.pointee.data.2, dst.pointee.linesize.2)]
            for i in 0..<3 {
                guard let sp = s[i].0, let dp = d[i].0 else { continue }
                let pw = i == 0 ? w : (w + 1) / 2, ph = i == 0 ? h : (h + 1) / 2
                for y in 0..<ph {
                    let row = UnsafePointer(sp + y * Int(s[i].1))
                    for x in 0..<pw { dp[y * Int(d[i].1) + x] = sample(row, x, pw) }
                }
            }
        }
    }

    /// Converts `src` (8-bit 4:2:0) into `dst` as `yuvj420p` of the same size; reuses `dst`'s
    /// buffers when they fit.
    func convert(_ src: UnsafePointer<AVFrame>, into dst: UnsafeMutablePointer<AVFrame>) throws(MediaError) {
        let w = src.pointee.width, h = src.pointee.height
        if dst.pointee.width != w || dst.pointee.height != h || dst.pointee.format != AV_PIX_FMT_YUVJ420P.rawValue {
            av_frame_unref(dst)
            dst.pointee.width = w
            dst.pointee.height = h
            dst.pointee.format = AV_PIX_FMT_YUVJ420P.rawValue
            guard av_frame_get_buffer(dst, 0) >= 0 else { throw MediaError(.internalError, "out of memory") }
        }
        guard av_frame_make_writable(dst) >= 0 else { throw MediaError(.internalError, "out of memory") }
        let cw = Int((w + 1) >> 1), ch = Int((h + 1) >> 1)
        let s = src.pointee, d = dst.pointee
        guard let s0 = s.data.0, let s1 = s.data.1, let s2 = s.data.2, let d0 = d.data.0, let d1 = d.data.1, let d2 = d.data.2 else {
            throw MediaError(.encodeFailed, "picture without planes")
        }
        luma.withUnsafeBufferPointer { t in
            Self.map(t.baseAddress!, s0, Int(s.linesize.0), d0, Int(d.linesize.0), width: Int(w), height: Int(h))
        }
        chroma.withUnsafeBufferPointer { t in
            Self.map(t.baseAddress!, s1, Int(s.linesize.1), d1, Int(d.linesize.1), width: cw, height: ch)
            Self.map(t.baseAddress!, s2, Int(s.linesize.2), d2, Int(d.linesize.2), width: cw, height: ch)
        }
    }

    private static func map(_ table: UnsafePointer<UInt8>, _ src: UnsafePointer<UInt8>, _ srcLine: Int,
                            _ dst: UnsafeMutablePointer<UInt8>, _ dstLine: Int, width: Int, height: Int) {
        for y in 0..<height {
            let s = src + y * srcLine, d = dst + y * dstLine
            for x in 0..<width { d[x] = table[Int(s[x])] }
        }
    }

    /// A picture with `like`'s format and colour properties, samples from `value(plane, x, y)`.
    private static func picture(width: Int32, height: Int32, like frame: UnsafePointer<AVFrame>,
                                _ value: (Int, Int, Int) -> UInt8) throws(MediaError) -> UnsafeMutablePointer<AVFrame>? {
        guard let p = av_frame_alloc() else { throw MediaError(.internalError, "out of memory") }
        p.pointee.width = width
        p.pointee.height = height
        p.pointee.format = frame.pointee.format
        p.pointee.color_range = frame.pointee.color_range
        p.pointee.colorspace = frame.pointee.colorspace
        p.pointee.color_primaries = frame.pointee.color_primaries
        p.pointee.color_trc = frame.pointee.color_trc
        guard av_frame_get_buffer(p, 0) >= 0 else {
            var q: UnsafeMutablePointer<AVFrame>? = p
            av_frame_free(&q)
            throw MediaError(.internalError, "out of memory")
        }
        let planes = [(p.pointee.data.0, p.pointee.linesize.0), (p.pointee.data.1, p.pointee.linesize.1),
                      (p.pointee.data.2, p.pointee.linesize.2)]
        for (i, (data, line)) in planes.enumerated() {
            guard let data else { continue }
            let w = i == 0 ? Int(width) : Int((width + 1) >> 1), h = i == 0 ? Int(height) : Int((height + 1) >> 1)
            for y in 0..<h { for x in 0..<w { data[y * Int(line) + x] = value(i, x, y) } }
        }
        return p
    }

    /// Whether two `yuvj420p` pictures of the same size hold the same samples.
    static func samePlanes(_ a: UnsafePointer<AVFrame>, _ b: UnsafePointer<AVFrame>) -> Bool {
        let w = Int(a.pointee.width), h = Int(a.pointee.height)
        guard w == Int(b.pointee.width), h == Int(b.pointee.height) else { return false }
        let pa = [(a.pointee.data.0, a.pointee.linesize.0), (a.pointee.data.1, a.pointee.linesize.1), (a.pointee.data.2, a.pointee.linesize.2)]
        let pb = [(b.pointee.data.0, b.pointee.linesize.0), (b.pointee.data.1, b.pointee.linesize.1), (b.pointee.data.2, b.pointee.linesize.2)]
        for i in 0..<3 {
            guard let da = pa[i].0, let db = pb[i].0 else { return false }
            let pw = i == 0 ? w : (w + 1) >> 1, ph = i == 0 ? h : (h + 1) >> 1
            for y in 0..<ph where memcmp(da + y * Int(pa[i].1), db + y * Int(pb[i].1), pw) != 0 { return false }
        }
        return true
    }
}
