import CFFmpeg
import FrameCore

/// One demux pass over the video stream's packets: keyframe index, frame count, first and
/// last presentation timestamps. Packets are not decoded, except as below.
///
/// Packets flagged `AV_PKT_FLAG_DISCARD` (frames an MP4 edit list cuts away) are decoded by
/// FFmpeg but never output, so they are not frames; a discarded keyframe is still indexed
/// (before ``firstPTS``) because decoding the first kept frames must start there.
///
/// Everything is in the timestamps the `fps` filter sees, which are the decoder's
/// (`best_effort_timestamp`), not the packets'. Where packets carry presentation times they
/// agree. Where a key packet has none (AVI stores decode times only, and with B-frames
/// libavformat cannot infer the rest) the decoder labels each frame with the decode time of
/// the packet that pushes it out, `delay` packets later: an I-frame stored at dts 22 shows
/// at 25 behind two B-frames that belong before it, and the last `delay` frames only come out
/// of the final drain (see ``DrainTimestamps``). There the keyframe's timestamp is learned by
/// decoding from its packet, as a segment starting there will, until the first picture
/// comes out (a packet flagged key whose first picture is not a key picture, such as the
/// placeholder after a packed B-frame, is not a keyframe); the first frame is the packet
/// `delay` places in, and the drained frames extend the end.
struct KeyframeScan {
    var keyframes: [Keyframe] = []
    var frameCount = 0
    var firstPTS = Int64.max
    var lastPTS = Int64.min
    var lastDuration: Int64 = 0
    var isVariableFrameRate = false
    /// Whether frame timestamps come from the decoder (key packets without presentation times).
    var decoderTimed = false

    static func run(input: InputContainer, streamIndex: Int, fileSize: Int64) throws(MediaError) -> KeyframeScan {
        var scan = KeyframeScan()
        var packet = av_packet_alloc()
        defer { av_packet_free(&packet) }
        guard let pkt = packet else { throw MediaError(.internalError, "out of memory") }
        var timestamps: [Int64] = []
        // Decode timestamps in packet order, and the last packet's, for decoder-timed streams.
        var decodeTimes: [Int64] = []
        var lastDTS = ff_nopts_value(), lastPacketDuration: Int64 = 0
        var pictures: KeyPictureProbe?
        while true {
            let r = av_read_frame(input.ctx, pkt)
            if r == ff_averror_eof() { break }
            if r < 0 {
                if let error = input.io.sourceError { throw MediaError(.ioError, "reading the input failed: \(error)") }
                if input.io.cancelled { throw MediaError(.cancelled, "cancelled") }
                throw MediaError(.corruptMedia, "truncated or corrupt: \(ffErrorString(r))")
            }
            defer { av_packet_unref(pkt) }
            guard Int(pkt.pointee.stream_index) == streamIndex else { continue }
            if pkt.pointee.pos >= 0, pkt.pointee.pos + Int64(pkt.pointee.size) > fileSize {
                throw MediaError(.corruptMedia, "truncated: a video packet extends past the end of the file")
            }
            let pts = pkt.pointee.pts != ff_nopts_value() ? pkt.pointee.pts : pkt.pointee.dts
            guard pts != ff_nopts_value() else { continue }
            let key = pkt.pointee.flags & AV_PKT_FLAG_KEY != 0
            if pkt.pointee.flags & AV_PKT_FLAG_DISCARD != 0 {
                // Not a frame, but still the place to start decoding the frames after it.
                if key { scan.keyframes.append(Keyframe(pts: pts, pos: pkt.pointee.pos)) }
                continue
            }
            scan.frameCount += 1
            timestamps.append(pts)
            decodeTimes.append(pkt.pointee.dts != ff_nopts_value() ? pkt.pointee.dts : pts)
            lastDTS = decodeTimes.last!
            lastPacketDuration = pkt.pointee.duration
            scan.firstPTS = min(scan.firstPTS, pts)
            if pts >= scan.lastPTS {
                scan.lastPTS = pts
                scan.lastDuration = pkt.pointee.duration
            }
            if key && pkt.pointee.pts == ff_nopts_value() {
                if pictures == nil { pictures = try KeyPictureProbe(input.stream(streamIndex)!) }
                scan.decoderTimed = true
                if let found = try pictures!.start(pkt) { scan.keyframes.append(found) }
            } else {
                if key { scan.keyframes.append(Keyframe(pts: pts, pos: pkt.pointee.pos)) }
                if let found = try pictures?.feed(pkt) { scan.keyframes.append(found) }
            }
        }
        if let pictures, scan.decoderTimed {
            let st = input.stream(streamIndex)!
            let streamRate = Rational(st.pointee.avg_frame_rate.num > 0 ? st.pointee.avg_frame_rate : st.pointee.r_frame_rate)
            let drain = DrainTimestamps(timeBase: Rational(st.pointee.time_base), lastDTS: lastDTS,
                                        lastDuration: lastPacketDuration, codec: pictures.codec, streamRate: streamRate)
            if let found = try pictures.finish(drain) { scan.keyframes.append(found) }
            let delay = pictures.delay ?? 0
            if delay > 0, delay < decodeTimes.count {
                // Frame n shows at the decode time of packet n + delay; the last `delay` drain out.
                scan.firstPTS = decodeTimes[delay]
                scan.lastPTS = drain.timestamp(delay - 1)
                scan.lastDuration = drain.frameDuration(lastDuration: lastPacketDuration)
            }
        }
        scan.keyframes.sort { $0.pts < $1.pts }
        timestamps.sort()
        scan.isVariableFrameRate = Self.varies(timestamps)
        return scan
    }

    /// Whether the gaps between consecutive timestamps differ by more than rounding noise
    /// (millisecond time bases alternate 33/34 ticks at 30 fps; that is still constant).
    static func varies(_ sorted: [Int64]) -> Bool {
        guard sorted.count > 2 else { return false }
        var lo = Int64.max, hi = Int64.min
        for i in 1..<sorted.count {
            let d = sorted[i] - sorted[i - 1]
            lo = min(lo, d)
            hi = max(hi, d)
        }
        return hi - lo > max(2, lo / 20)
    }
}

/// Learns the timestamp of a keyframe's picture by decoding from its packet after a flush,
/// exactly as a segment that seeks there does, until the first picture comes out.
final class KeyPictureProbe {
    let codec: UnsafeMutablePointer<AVCodecContext>
    private let frame: UnsafeMutablePointer<AVFrame>
    /// The key packet being measured, and how many packets were fed since it.
    private var pending: Int64?
    private var fed = 0
    /// Packets fed before the first picture came out, at the first keyframe: the decoder's
    /// reorder delay.
    private(set) var delay: Int?
    /// Give up on a keyframe whose picture does not come out within this many packets.
    static let patience = 64

    init(_ st: UnsafeMutablePointer<AVStream>) throws(MediaError) {
        codec = try VideoDecoderContext.open(st)
        guard let f = av_frame_alloc() else {
            var c: UnsafeMutablePointer<AVCodecContext>? = codec
            avcodec_free_context(&c)
            throw MediaError(.internalError, "out of memory")
        }
        frame = f
    }

    deinit {
        var f: UnsafeMutablePointer<AVFrame>? = frame
        av_frame_free(&f)
        var c: UnsafeMutablePointer<AVCodecContext>? = codec
        avcodec_free_context(&c)
    }

    /// Starts measuring the key packet `pkt` (abandoning one still unanswered).
    func start(_ pkt: UnsafeMutablePointer<AVPacket>) throws(MediaError) -> Keyframe? {
        avcodec_flush_buffers(codec)
        pending = pkt.pointee.pos
        fed = 0
        return try feed(pkt)
    }

    /// Feeds the next packet while a keyframe is being measured; its entry once known.
    func feed(_ pkt: UnsafeMutablePointer<AVPacket>) throws(MediaError) -> Keyframe? {
        guard pending != nil else { return nil }
        let r = avcodec_send_packet(codec, pkt)
        if r < 0 && r != ff_averror_invaliddata() && r != ff_averror_eagain() {
            throw MediaError(.corruptMedia, "the decoder rejected a key packet: \(ffErrorString(r))")
        }
        fed += 1
        if let found = receive(drain: nil) { return found }
        if fed >= Self.patience { pending = nil }
        return nil
    }

    /// At the end of the stream: drains a keyframe still being measured.
    func finish(_ drain: DrainTimestamps) throws(MediaError) -> Keyframe? {
        guard pending != nil else { return nil }
        _ = avcodec_send_packet(codec, nil)
        return receive(drain: drain)
    }

    private func receive(drain: DrainTimestamps?) -> Keyframe? {
        guard let pos = pending else { return nil }
        let r = avcodec_receive_frame(codec, frame)
        guard r >= 0 else { return nil }
        defer { av_frame_unref(frame) }
        pending = nil
        if delay == nil { delay = fed - 1 }
        var ts = frame.pointee.best_effort_timestamp
        if ts == ff_nopts_value(), let drain { ts = drain.timestamp(0) }
        let isKeyPicture = frame.pointee.key_frame != 0 || frame.pointee.pict_type == AV_PICTURE_TYPE_I
        guard ts != ff_nopts_value(), isKeyPicture, frame.pointee.flags & AV_FRAME_FLAG_CORRUPT == 0 else { return nil }
        return Keyframe(pts: ts, pos: pos)
    }
}
