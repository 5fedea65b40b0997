import CFFmpeg
import FrameCore

/// Receives a decoded frame chosen for one or more consecutive samples.
typealias SampleSink = (UnsafeMutablePointer<AVFrame>, _ pts: Int64, _ samples: Range<UInt32>) throws(MediaError) -> Void

/// The decode loop for one segment: position on the right keyframe, decode forward, hand
/// each chosen frame to the sink, and jump ahead instead of decoding gaps.
///
/// Why it is exact: sample `k` is the last frame with `slot <= k` (``SampleClock``). The
/// loop holds the latest decoded frame and emits it for every sample before the slot of the
/// next frame that arrives. Before each packet it checks the keyframe the pending sample
/// needs (the last keyframe whose slot is `<= k`); if that keyframe has not been fed to the
/// decoder yet, nothing before it can be the answer, so it drops queued packets or seeks.
/// A small lookahead queue of packets tells which non-key packets are certainly not samples
/// (a later packet falls in the same or an earlier slot): those are decoded with
/// `skip_frame = AVDISCARD_NONREF`, which skips them unless other frames reference them.
final class SegmentWalk {
    static let lookahead = 24

    let input: InputContainer
    let codec: UnsafeMutablePointer<AVCodecContext>
    let streamIndex: Int32
    let spec: SegmentSpec
    let clock: SampleClock
    let isCancelled: @Sendable () -> Bool
    let sink: SampleSink
    /// `slot(sample n) = baseSlot + n`.
    let baseSlot: Int64
    let endSample: UInt32
    let keyframeSlots: [Int64]

    var stats = SegmentStats()
    private var nextSample: UInt32
    private var queue: [UnsafeMutablePointer<AVPacket>] = []
    private var held: UnsafeMutablePointer<AVFrame>
    private var heldPTS: Int64?
    private var scratch: UnsafeMutablePointer<AVFrame>
    private var reachedEOF = false
    private var positioned = false
    /// Packets handed to the decoder, and those it rejected as invalid data.
    /// A few damaged packets are skipped like the ffmpeg tool does; a segment
    /// whose packets are mostly damaged is corrupt, and filling its samples
    /// from the last good picture would hand the user garbage as success.
    private var fedPackets = 0
    private var damagedPackets = 0
    private var lastFedKeyPTS: Int64?
    private var done = false
    /// True until this demuxer has read anything after opening.
    var fresh: Bool

    init(input: InputContainer, codec: UnsafeMutablePointer<AVCodecContext>, spec: SegmentSpec, clock: SampleClock,
         fresh: Bool, isCancelled: @escaping @Sendable () -> Bool, sink: @escaping SampleSink) throws(MediaError) {
        self.input = input
        self.codec = codec
        self.streamIndex = Int32(spec.streamIndex)
        self.spec = spec
        self.clock = clock
        self.fresh = fresh
        self.isCancelled = isCancelled
        self.sink = sink
        self.baseSlot = clock.slot(spec.startPTS) - Int64(spec.firstSample)
        self.nextSample = spec.firstSample
        self.endSample = spec.firstSample + spec.sampleCount
        self.keyframeSlots = spec.keyframes.map { clock.slot($0.pts) }
        guard let h = av_frame_alloc(), let s = av_frame_alloc() else {
            throw MediaError(.internalError, "out of memory")
        }
        held = h
        scratch = s
    }

    deinit {
        clearQueue()
        var h: UnsafeMutablePointer<AVFrame>? = held
        av_frame_free(&h)
        var s: UnsafeMutablePointer<AVFrame>? = scratch
        av_frame_free(&s)
    }

    func run() throws(MediaError) {
        guard spec.sampleCount > 0 else { return }
        while !done {
            if isCancelled() { throw MediaError(.cancelled, "segment \(spec.index) cancelled") }
            try reposition()
            try fill()
            if queue.isEmpty {
                try drain()
                try finish()
                break
            }
            let packet = queue.removeFirst()
            defer { var p: UnsafeMutablePointer<AVPacket>? = packet; av_packet_free(&p) }
            try feed(packet)
            try checkDamage()
        }
    }

    private func checkDamage() throws(MediaError) {
        guard damagedPackets >= 8, damagedPackets * 2 > fedPackets else { return }
        throw MediaError(.corruptMedia,
                         "segment \(spec.index): \(damagedPackets) of \(fedPackets) packets could not be decoded")
    }

    // MARK: Positioning

    /// Index of the last keyframe whose slot is `<= k`, if any.
    private func keyframeIndex(forSlot k: Int64) -> Int? {
        var lo = 0, hi = keyframeSlots.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if keyframeSlots[mid] <= k { lo = mid + 1 } else { hi = mid }
        }
        return lo == 0 ? nil : lo - 1
    }

    private func reposition() throws(MediaError) {
        let k = baseSlot + Int64(nextSample)
        let m = keyframeIndex(forSlot: k)
        if !positioned {
            positioned = true
            if let m { try jump(to: spec.keyframes[m]) } else { try rewind() }
            return
        }
        guard let m else { return }
        let keyframe = spec.keyframes[m]
        if let fed = lastFedKeyPTS, keyframe.pts <= fed { return }
        try jump(to: keyframe)
    }

    /// Continues decoding at `keyframe`: from the lookahead queue if it is already there,
    /// otherwise by seeking. Frames decoded so far cannot be the pending sample any more.
    private func jump(to keyframe: Keyframe) throws(MediaError) {
        avcodec_flush_buffers(codec)
        av_frame_unref(held)
        heldPTS = nil
        lastFedKeyPTS = nil
        if let i = queue.firstIndex(where: { isKey($0) && packetPTS($0) == keyframe.pts }) {
            stats.seeks += 1
            for p in queue[..<i] { var q: UnsafeMutablePointer<AVPacket>? = p; av_packet_free(&q) }
            queue.removeFirst(i)
            return
        }
        try seek(to: keyframe)
    }

    private func seek(to keyframe: Keyframe) throws(MediaError) {
        clearQueue()
        reachedEOF = false
        stats.seeks += 1
        let tb = spec.timeBase
        var step = max(Int64(1), Int64(tb.den) / Int64(max(tb.num, 1)))
        var target = keyframe.pts
        for _ in 0..<6 {
            guard av_seek_frame(input.ctx, streamIndex, target, AVSEEK_FLAG_BACKWARD) >= 0 else { break }
            fresh = false
            if try scan(for: keyframe, detectOvershoot: true) { return }
            target -= step
            step *= 2
        }
        // Last resort: read from the top until the keyframe shows up.
        try rewind()
        if try scan(for: keyframe, detectOvershoot: false) { return }
        throw MediaError(.decodeFailed, "keyframe at pts \(keyframe.pts) not found in the stream")
    }

    /// Goes back to the first packet of the file.
    private func rewind() throws(MediaError) {
        clearQueue()
        reachedEOF = false
        if fresh { return }
        if avformat_seek_file(input.ctx, streamIndex, Int64.min, Int64.min, Int64.max, 0) < 0 {
            avio_seek(input.ctx.pointee.pb, 0, SEEK_SET)
            avformat_flush(input.ctx)
        }
    }

    /// Reads packets until `keyframe`'s; it is queued and true returned. With
    /// `detectOvershoot`, gives up (false) as soon as a packet shows the seek landed after it.
    private func scan(for keyframe: Keyframe, detectOvershoot: Bool) throws(MediaError) -> Bool {
        while true {
            guard let packet = try readPacket() else { return false }
            let pts = packetPTS(packet)
            let key = isKey(packet)
            if key && (pts == keyframe.pts || (keyframe.pos >= 0 && packet.pointee.pos == keyframe.pos)) {
                queue.append(packet)
                return true
            }
            var p: UnsafeMutablePointer<AVPacket>? = packet
            let dts = packet.pointee.dts
            av_packet_free(&p)
            if detectOvershoot && ((dts != ff_nopts_value() && dts > keyframe.pts) || (key && pts > keyframe.pts)) {
                return false
            }
        }
    }

    // MARK: Demuxing

    /// The next packet of the video stream, or nil at the end.
    private func readPacket() throws(MediaError) -> UnsafeMutablePointer<AVPacket>? {
        guard let packet = av_packet_alloc() else { throw MediaError(.internalError, "out of memory") }
        while true {
            let r = av_read_frame(input.ctx, packet)
            fresh = false
            if r == ff_averror_eof() {
                var p: UnsafeMutablePointer<AVPacket>? = packet
                av_packet_free(&p)
                return nil
            }
            if r < 0 {
                var p: UnsafeMutablePointer<AVPacket>? = packet
                av_packet_free(&p)
                if isCancelled() || input.io.cancelled { throw MediaError(.cancelled, "segment \(spec.index) cancelled") }
                if let error = input.io.sourceError { throw MediaError(.ioError, "reading the input failed: \(error)") }
                throw MediaError(.corruptMedia, "demuxing failed: \(ffErrorString(r))")
            }
            if packet.pointee.stream_index == streamIndex { return packet }
            av_packet_unref(packet)
        }
    }

    private func fill() throws(MediaError) {
        while queue.count < Self.lookahead && !reachedEOF {
            if let packet = try readPacket() { queue.append(packet) } else { reachedEOF = true }
        }
    }

    private func clearQueue() {
        for p in queue { var q: UnsafeMutablePointer<AVPacket>? = p; av_packet_free(&q) }
        queue.removeAll()
    }

    private func packetPTS(_ p: UnsafeMutablePointer<AVPacket>) -> Int64 {
        p.pointee.pts != ff_nopts_value() ? p.pointee.pts : p.pointee.dts
    }

    private func isKey(_ p: UnsafeMutablePointer<AVPacket>) -> Bool { p.pointee.flags & AV_PKT_FLAG_KEY != 0 }

    // MARK: Decoding

    /// Whether no frame of this packet can be a sample: it lies outside the segment, or a
    /// later packet (in the lookahead) falls in the same or an earlier slot and replaces it.
    private func cannotBeSample(_ packet: UnsafeMutablePointer<AVPacket>) -> Bool {
        let pts = packetPTS(packet)
        guard pts != ff_nopts_value() else { return false }
        if pts < spec.startPTS || pts >= spec.endPTS { return true }
        let slot = clock.slot(pts)
        return queue.contains { q in
            let t = packetPTS(q)
            return t != ff_nopts_value() && t > pts && clock.slot(t) <= slot
        }
    }

    private func feed(_ packet: UnsafeMutablePointer<AVPacket>) throws(MediaError) {
        if isKey(packet) { lastFedKeyPTS = max(lastFedKeyPTS ?? Int64.min, packetPTS(packet)) }
        codec.pointee.skip_frame = !isKey(packet) && cannotBeSample(packet) ? AVDISCARD_NONREF : AVDISCARD_DEFAULT
        let r = avcodec_send_packet(codec, packet)
        fedPackets += 1
        if r == ff_averror_invaliddata() { damagedPackets += 1 }
        // Like the ffmpeg tool, a damaged packet is skipped rather than failing the job.
        if r < 0 && r != ff_averror_invaliddata() && r != ff_averror_eagain() {
            throw MediaError(.decodeFailed, "decoder rejected a packet: \(ffErrorString(r))")
        }
        try receive()
    }

    private func drain() throws(MediaError) {
        codec.pointee.skip_frame = AVDISCARD_DEFAULT
        _ = avcodec_send_packet(codec, nil)
        try receive()
    }

    private func receive() throws(MediaError) {
        while !done {
            let r = avcodec_receive_frame(codec, scratch)
            if r == ff_averror_eagain() || r == ff_averror_eof() { return }
            if r < 0 {
                if r == ff_averror_invaliddata() { damagedPackets += 1; continue }
                throw MediaError(.decodeFailed, "decoding failed: \(ffErrorString(r))")
            }
            stats.decodedFrames += 1
            try accept(scratch)
            av_frame_unref(scratch)
        }
    }

    /// Applies the sampling rule to one decoded frame (in presentation order).
    private func accept(_ frame: UnsafeMutablePointer<AVFrame>) throws(MediaError) {
        let pts = frame.pointee.best_effort_timestamp
        guard pts != ff_nopts_value(), pts >= spec.startPTS else { return }
        if pts >= spec.endPTS {
            try finish()
            return
        }
        let slot = clock.slot(pts)
        let pending = baseSlot + Int64(nextSample)
        if slot > pending {
            let upTo = UInt32(clamping: min(Int64(endSample), slot - baseSlot))
            if heldPTS != nil {
                try emit(held, heldPTS!, upTo: upTo)
            } else {
                // Only a damaged stream gets here: the keyframe before the sample never decoded.
                try emit(frame, pts, upTo: upTo)
            }
            if nextSample >= endSample {
                done = true
                return
            }
        }
        av_frame_unref(held)
        av_frame_move_ref(held, frame)
        heldPTS = pts
    }

    private func emit(_ frame: UnsafeMutablePointer<AVFrame>, _ pts: Int64, upTo: UInt32) throws(MediaError) {
        guard upTo > nextSample else { return }
        try sink(frame, pts, nextSample..<upTo)
        stats.emittedFrames += Int(upTo - nextSample)
        nextSample = upTo
    }

    /// The segment's frames are exhausted: the held frame covers the remaining samples.
    private func finish() throws(MediaError) {
        if let pts = heldPTS { try emit(held, pts, upTo: endSample) }
        done = true
        guard nextSample >= endSample else {
            throw MediaError(.decodeFailed, "segment \(spec.index) produced \(nextSample - spec.firstSample) of \(spec.sampleCount) samples")
        }
    }
}
