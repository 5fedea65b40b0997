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
/// Once the pending sample's packet is in the decoder and the next sample needs a keyframe
/// not fed yet, the rest of the GOP cannot be any sample: the decoder is drained (so the
/// sample leaves its reorder buffer without more packets) and the walk jumps to that keyframe.
final class SegmentWalk {
    static let lookahead = 24

    /// The work-saving decisions, switchable so tests can show each one matters.
    struct Tuning {
        /// Send packets that cannot be samples with `skip_frame = AVDISCARD_NONREF`.
        var skipNonReference = true
        /// Emit samples and end segments from packet timestamps in the lookahead.
        var decideFromLookahead = true
        /// Drain the decoder once the last sample a GOP holds has been fed, instead of
        /// decoding the GOP's remaining (reference) frames (needs `decideFromLookahead`).
        var skipGOPTails = true
    }

    let input: InputContainer
    let codec: UnsafeMutablePointer<AVCodecContext>
    let streamIndex: Int32
    let spec: SegmentSpec
    let clock: SampleClock
    let isCancelled: @Sendable () -> Bool
    let sink: SampleSink
    let tuning: Tuning
    /// `slot(sample n) = baseSlot + n`.
    let baseSlot: Int64
    let endSample: UInt32
    let keyframeSlots: [Int64]
    /// Index keyframes by byte position: how a key packet without a presentation time is
    /// recognised (its keyframe's timestamp is its picture's, which the packet does not carry).
    let keyframeByPos: [Int64: Int64]

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
    /// The keyframe the last jump positioned on (queued, maybe not fed yet).
    private var positionedKeyPTS: Int64?
    private var done = false
    /// Timestamps of packets fed to the decoder whose frames have not come out yet.
    private var pending: [Int64] = []
    /// Frames that came out with the timestamp their packet announced; early decisions from
    /// packet timestamps are trusted only after a run of these, and never after a mismatch.
    private var matchedOutputs = 0
    private var timestampsDisagree = false
    /// Whether a packet without a presentation time was read (AVI and other decode-time-only
    /// containers). Then no packet is skipped: the decoder stamps pictures with the decode
    /// time of whichever packet pushes them out, and a packed B-frame packet also carries the
    /// next B-frame, so a packet's own timestamp does not say which pictures skipping it loses.
    private var packetsLackPresentationTimes = false
    /// The last packet fed (decode time, duration): where the final drain's frames without
    /// timestamps are numbered from.
    private var lastFed: (dts: Int64, duration: Int64)?
    /// Frames without a timestamp that came out of the final drain so far.
    private var drainedWithoutTimestamp = 0
    private var drainTimestamps: DrainTimestamps?
    /// While draining after a sample (``skipGOPTail()``): the sample's timestamp. Only that
    /// frame is kept; the frames after it are the next GOP's business or not samples at all.
    private var drainingFor: Int64?
    /// Set when a drained sample did not come out of the decoder (never expected): the GOP
    /// is decoded again the ordinary way, and no further tail is skipped in this segment.
    private var tailSkipFailed = false
    /// True until this demuxer has read anything after opening.
    var fresh: Bool

    init(input: InputContainer, codec: UnsafeMutablePointer<AVCodecContext>, spec: SegmentSpec, clock: SampleClock,
         fresh: Bool, tuning: Tuning = Tuning(), isCancelled: @escaping @Sendable () -> Bool,
         sink: @escaping SampleSink) throws(MediaError) {
        self.tuning = tuning
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
        var byPos: [Int64: Int64] = [:]
        for kf in spec.keyframes where kf.pos >= 0 { byPos[kf.pos] = kf.pts }
        self.keyframeByPos = byPos
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
            if tuning.decideFromLookahead, try emitEarly() { continue }
            if tuning.decideFromLookahead, segmentTailIsInDecoder() {
                try drain()
                try finish()
                break
            }
            if tuning.decideFromLookahead, tuning.skipGOPTails, try skipGOPTail() { continue }
            let packet = queue.removeFirst()
            defer { var p: UnsafeMutablePointer<AVPacket>? = packet; av_packet_free(&p) }
            try feed(packet)
            try checkDamage()
        }
        discardDecoderFrames()
    }

    /// Empties the decoder before a jump (and at the end of the segment): the pictures still in
    /// it were decoded, so they are counted in `decodedFrames` (otherwise the count would hide
    /// the frames decoded past a sample), then dropped. Outputting already decoded pictures
    /// costs no decoding.
    private func discardDecoderFrames() {
        codec.pointee.skip_frame = AVDISCARD_DEFAULT
        let flags = codec.pointee.flags
        codec.pointee.flags |= AV_CODEC_FLAG_OUTPUT_CORRUPT
        _ = avcodec_send_packet(codec, nil)
        while avcodec_receive_frame(codec, scratch) >= 0 {
            stats.decodedFrames += 1
            av_frame_unref(scratch)
        }
        codec.pointee.flags = flags
        avcodec_flush_buffers(codec)
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
        if keyframe.pts <= max(lastFedKeyPTS ?? .min, positionedKeyPTS ?? .min) { return }
        try jump(to: keyframe)
    }

    /// Continues decoding at `keyframe`: from the lookahead queue if it is already there,
    /// otherwise by seeking. Frames decoded so far cannot be the pending sample any more.
    private func jump(to keyframe: Keyframe) throws(MediaError) {
        discardDecoderFrames()
        av_frame_unref(held)
        heldPTS = nil
        lastFedKeyPTS = nil
        pending.removeAll()
        if let i = queue.firstIndex(where: { isPacket($0, of: keyframe) }) {
            stats.seeks += 1
            for p in queue[..<i] { var q: UnsafeMutablePointer<AVPacket>? = p; av_packet_free(&q) }
            queue.removeFirst(i)
            positionedKeyPTS = keyframe.pts
            return
        }
        try seek(to: keyframe)
        positionedKeyPTS = keyframe.pts
    }

    private func seek(to keyframe: Keyframe) throws(MediaError) {
        let watch = Stopwatch()
        defer { stats.seekSeconds += watch.seconds }
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
        discardDecoderFrames()
        pending.removeAll()
        positionedKeyPTS = nil
        if fresh { return }
        stats.seeks += 1
        // Seek to the earliest timestamp known, backwards, so the first keyframe is next;
        // demuxers without timestamp seeking get a byte seek to 0.
        var earliest = spec.decodeStartPTS
        if let st = input.stream(Int(streamIndex)), st.pointee.start_time != ff_nopts_value() {
            earliest = min(earliest, st.pointee.start_time)
        }
        if av_seek_frame(input.ctx, streamIndex, earliest, AVSEEK_FLAG_BACKWARD) >= 0 { return }
        if av_seek_frame(input.ctx, streamIndex, earliest, 0) >= 0 { return }
        if av_seek_frame(input.ctx, streamIndex, 0, AVSEEK_FLAG_BYTE) >= 0 { return }
        throw MediaError(.decodeFailed, "cannot seek back to the start of the stream")
    }

    /// Reads packets until `keyframe`'s; it is queued and true returned. With
    /// `detectOvershoot`, gives up (false) as soon as a packet shows the seek landed after it.
    private func scan(for keyframe: Keyframe, detectOvershoot: Bool) throws(MediaError) -> Bool {
        while true {
            guard let packet = try readPacket() else { return false }
            let pts = packetPTS(packet)
            let key = isKey(packet)
            if isPacket(packet, of: keyframe) {
                queue.append(packet)
                return true
            }
            var p: UnsafeMutablePointer<AVPacket>? = packet
            let dts = packet.pointee.dts
            // Without a presentation time the packet's place in the file tells: past the keyframe's.
            let pastByPosition = packet.pointee.pts == ff_nopts_value() && keyframe.pos >= 0 && packet.pointee.pos > keyframe.pos
            av_packet_free(&p)
            if detectOvershoot && ((dts != ff_nopts_value() && dts > keyframe.pts) || (key && pts > keyframe.pts) || pastByPosition) {
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
            if packet.pointee.stream_index == streamIndex {
                if packet.pointee.pts == ff_nopts_value() && packet.pointee.flags & AV_PKT_FLAG_DISCARD == 0 {
                    packetsLackPresentationTimes = true
                }
                return packet
            }
            av_packet_unref(packet)
        }
    }

    private func fill() throws(MediaError) {
        while queue.count < Self.lookahead && !reachedEOF {
            if let packet = try readPacket() { queue.append(packet) } else { reachedEOF = true }
        }
    }

    // MARK: Deciding from packet timestamps

    /// Whether packet timestamps can stand in for frames not decoded yet: the lookahead is full
    /// (or holds the rest of the file), and so far every frame came out with its packet's
    /// timestamp. A full lookahead is longer than any codec's reordering delay, so frames not
    /// yet read come after everything queued.
    private var lookaheadIsComplete: Bool {
        !timestampsDisagree && matchedOutputs >= 4 && (reachedEOF || queue.count >= Self.lookahead)
    }

    /// The next frame after `pts` in presentation order among the frames still to come out
    /// (fed but not output, or queued), if the lookahead can tell.
    private func nextFrame(after pts: Int64) -> Int64? {
        var next: Int64?
        for t in pending where t > pts { next = min(next ?? t, t) }
        for q in queue where q.pointee.flags & AV_PKT_FLAG_DISCARD == 0 {
            let t = packetPTS(q)
            if t != ff_nopts_value() && t > pts { next = min(next ?? t, t) }
        }
        return next
    }

    /// Emits the held frame as soon as the lookahead shows the next frame falls in a later
    /// slot, instead of feeding packets until that frame is decoded; the pending sample's
    /// keyframe may then be jumped to at once. Returns whether anything was emitted.
    private func emitEarly() throws(MediaError) -> Bool {
        guard let h = heldPTS, lookaheadIsComplete, let next = nextFrame(after: h) else { return false }
        if next >= spec.endPTS {
            try emit(held, h, upTo: endSample)
        } else {
            let upTo = UInt32(clamping: min(Int64(endSample), clock.slot(next) - baseSlot))
            guard upTo > nextSample else { return false }
            try emit(held, h, upTo: upTo)
        }
        if nextSample >= endSample { done = true }
        return true
    }

    /// Whether every frame this segment still owns has already been fed: all queued packets
    /// belong to the next segment. Then draining the decoder finishes the segment without
    /// decoding the next segment's keyframe. (An open GOP's leading frames, which belong here,
    /// sit in the queue after that keyframe, so they keep this false.)
    private func segmentTailIsInDecoder() -> Bool {
        guard spec.endPTS != Int64.max, !timestampsDisagree, reachedEOF || queue.count >= Self.lookahead else { return false }
        return queue.allSatisfy { q in
            let t = packetPTS(q)
            return t != ff_nopts_value() && t >= spec.endPTS
        }
    }

    /// The frame sample slot `k` shows and the next frame after it in presentation order,
    /// from the frames held, fed but not output, and queued; nil unless the lookahead is
    /// complete (frames not read yet come after all of these) and that next frame is known
    /// (or the file's end is read, then the next is nil). The choice is ``SampleClock``'s
    /// rule: the last frame whose slot is `<= k`.
    private func sampleFrame(forSlot k: Int64) -> (sample: Int64, next: Int64?)? {
        guard lookaheadIsComplete else { return nil }
        var sample: Int64?
        func consider(_ t: Int64) {
            if t != ff_nopts_value(), clock.slot(t) <= k, t > (sample ?? .min) { sample = t }
        }
        if let heldPTS { consider(heldPTS) }
        for t in pending { consider(t) }
        for q in queue where q.pointee.flags & AV_PKT_FLAG_DISCARD == 0 { consider(packetPTS(q)) }
        guard let sample, sample >= spec.startPTS, sample < spec.endPTS else { return nil }
        let next = nextFrame(after: sample)
        if next == nil && !reachedEOF { return nil }
        return (sample, next)
    }

    /// Skips the rest of a GOP once it holds no more samples: if the pending sample's frame has
    /// been fed (its references were fed before it, in decode order) and the sample after it
    /// needs a keyframe not fed yet (or there is none in this segment), drains the decoder to
    /// get the frame out, emits it and jumps to that keyframe. The GOP's remaining packets are
    /// never decoded. Returns whether it did.
    private func skipGOPTail() throws(MediaError) -> Bool {
        guard !tailSkipFailed, !packetsLackPresentationTimes, !timestampsDisagree else { return false }
        let k = baseSlot + Int64(nextSample)
        guard let current = keyframeIndex(forSlot: k),
              let (sample, next) = sampleFrame(forSlot: k), sample != heldPTS, pending.contains(sample) else { return false }
        let bound: UInt32
        if let next, next < spec.endPTS {
            bound = UInt32(clamping: min(Int64(endSample), clock.slot(next) - baseSlot))
        } else {
            bound = endSample
        }
        guard bound > nextSample else { return false }
        var target: Keyframe?
        if bound < endSample {
            // The next sample's keyframe must be one the decoder has not seen: otherwise the
            // frames after this sample are that sample's references and must be decoded.
            guard let m = keyframeIndex(forSlot: baseSlot + Int64(bound)),
                  spec.keyframes[m].pts > max(lastFedKeyPTS ?? .min, positionedKeyPTS ?? .min) else { return false }
            target = spec.keyframes[m]
        }
        drainingFor = sample
        try drain()
        drainingFor = nil
        if heldPTS == sample { try emit(held, sample, upTo: bound) }
        guard nextSample >= bound else {
            // The decoder did not give the frame back: decode this GOP again, all of it.
            tailSkipFailed = true
            try jump(to: spec.keyframes[current])
            return true
        }
        stats.gopTailsSkipped += 1
        if let target {
            try jump(to: target)
        } else {
            done = true
        }
        return true
    }

    private func clearQueue() {
        for p in queue { var q: UnsafeMutablePointer<AVPacket>? = p; av_packet_free(&q) }
        queue.removeAll()
    }

    private func packetPTS(_ p: UnsafeMutablePointer<AVPacket>) -> Int64 {
        p.pointee.pts != ff_nopts_value() ? p.pointee.pts : p.pointee.dts
    }

    private func isKey(_ p: UnsafeMutablePointer<AVPacket>) -> Bool { p.pointee.flags & AV_PKT_FLAG_KEY != 0 }

    /// Whether `p` is `keyframe`'s packet. A packet with a presentation time matches by it (or
    /// by position); one without (AVI) only by position: its decode time is not the picture's,
    /// and a placeholder packet flagged key may carry the picture's timestamp as its own.
    private func isPacket(_ p: UnsafeMutablePointer<AVPacket>, of keyframe: Keyframe) -> Bool {
        guard isKey(p) else { return false }
        if keyframe.pos >= 0 && p.pointee.pos == keyframe.pos { return true }
        return p.pointee.pts != ff_nopts_value() && p.pointee.pts == keyframe.pts
    }

    /// The index timestamp of a key packet: its presentation time, or for one without, its
    /// index entry's (found by position); nil for a key packet the index does not know.
    private func keyframeTime(_ p: UnsafeMutablePointer<AVPacket>) -> Int64? {
        if p.pointee.pts != ff_nopts_value() { return p.pointee.pts }
        if p.pointee.pos >= 0, let t = keyframeByPos[p.pointee.pos] { return t }
        return nil
    }

    // MARK: Decoding

    /// Whether no frame of this packet can be a sample: it lies outside the segment, or a
    /// later packet (in the lookahead) falls in the same or an earlier slot and replaces it.
    private func cannotBeSample(_ packet: UnsafeMutablePointer<AVPacket>) -> Bool {
        guard !packetsLackPresentationTimes, packet.pointee.pts != ff_nopts_value() else { return false }
        let pts = packetPTS(packet)
        if pts < spec.startPTS || pts >= spec.endPTS { return true }
        let slot = clock.slot(pts)
        return queue.contains { q in
            let t = packetPTS(q)
            return t != ff_nopts_value() && t > pts && clock.slot(t) <= slot
        }
    }

    private func feed(_ packet: UnsafeMutablePointer<AVPacket>) throws(MediaError) {
        if isKey(packet), let t = keyframeTime(packet) { lastFedKeyPTS = max(lastFedKeyPTS ?? Int64.min, t) }
        let pts = packetPTS(packet)
        if packet.pointee.dts != ff_nopts_value() { lastFed = (packet.pointee.dts, packet.pointee.duration) }
        if pts != ff_nopts_value() && packet.pointee.flags & AV_PKT_FLAG_DISCARD == 0 { pending.append(pts) }
        codec.pointee.skip_frame = tuning.skipNonReference && !isKey(packet) && cannotBeSample(packet) ? AVDISCARD_NONREF : AVDISCARD_DEFAULT
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
        if drainingFor == nil, reachedEOF, let lastFed, let st = input.stream(Int(streamIndex)) {
            let rate = Rational(st.pointee.avg_frame_rate.num > 0 ? st.pointee.avg_frame_rate : st.pointee.r_frame_rate)
            drainTimestamps = DrainTimestamps(timeBase: spec.timeBase, lastDTS: lastFed.dts, lastDuration: lastFed.duration,
                                              codec: codec, streamRate: rate)
        }
        // FFmpeg 5.1's H.264 decoder, after a flush, marks the pictures decoded before the
        // recovery point (an open GOP's I-frame) was output as not recovered, and its final
        // drain drops those instead of re-checking them as normal output does: after a seek
        // into the last GOP the last frames never come out, though the ffmpeg tool (which
        // never seeks) shows them. Asking for corrupt output during the drain brings them
        // back. Undecodable leading pictures of the keyframe we jumped to may come with them;
        // they are never emitted: they come out before that keyframe, which has an earlier
        // or the same slot as the pending sample and a later timestamp, so it replaces them.
        let flags = codec.pointee.flags
        codec.pointee.flags |= AV_CODEC_FLAG_OUTPUT_CORRUPT
        defer { codec.pointee.flags = flags }
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
            var pts = scratch.pointee.best_effort_timestamp
            if let i = pending.firstIndex(of: pts) {
                pending.remove(at: i)
                matchedOutputs += 1
            } else {
                timestampsDisagree = true
            }
            if pts == ff_nopts_value(), let drainTimestamps {
                // The ffmpeg tool's numbering of frames the final drain leaves unstamped.
                pts = drainTimestamps.timestamp(drainedWithoutTimestamp)
                drainedWithoutTimestamp += 1
            }
            try accept(scratch, pts: pts)
            av_frame_unref(scratch)
        }
    }

    /// Applies the sampling rule to one decoded frame (in presentation order).
    private func accept(_ frame: UnsafeMutablePointer<AVFrame>, pts: Int64) throws(MediaError) {
        guard pts != ff_nopts_value(), pts >= spec.startPTS else { return }
        if let drainingFor {
            // Draining after a sample: keep that frame only (``skipGOPTail()`` emits it).
            if pts == drainingFor {
                av_frame_unref(held)
                av_frame_move_ref(held, frame)
                heldPTS = pts
            }
            return
        }
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
