import CFFmpeg
import FrameCore

/// One demux pass over the video stream's packets: keyframe index, frame count, first and
/// last presentation timestamps. No packet is decoded, so this costs a read of the file.
///
/// Packets flagged `AV_PKT_FLAG_DISCARD` (frames an MP4 edit list cuts away) are decoded by
/// FFmpeg but never output, so they are neither frames nor keyframes here.
struct KeyframeScan {
    var keyframes: [Keyframe] = []
    var frameCount = 0
    var firstPTS = Int64.max
    var lastPTS = Int64.min
    var lastDuration: Int64 = 0
    var isVariableFrameRate = false

    static func run(input: InputContainer, streamIndex: Int, fileSize: Int64) throws(MediaError) -> KeyframeScan {
        var scan = KeyframeScan()
        var packet = av_packet_alloc()
        defer { av_packet_free(&packet) }
        guard let pkt = packet else { throw MediaError(.internalError, "out of memory") }
        var timestamps: [Int64] = []
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
            guard pts != ff_nopts_value(), pkt.pointee.flags & AV_PKT_FLAG_DISCARD == 0 else { continue }
            scan.frameCount += 1
            timestamps.append(pts)
            scan.firstPTS = min(scan.firstPTS, pts)
            if pts >= scan.lastPTS {
                scan.lastPTS = pts
                scan.lastDuration = pkt.pointee.duration
            }
            if pkt.pointee.flags & AV_PKT_FLAG_KEY != 0 {
                scan.keyframes.append(Keyframe(pts: pts, pos: pkt.pointee.pos))
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
