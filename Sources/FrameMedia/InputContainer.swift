import CFFmpeg
import FrameCore

/// An opened demuxer (`AVFormatContext`) reading through a ``ByteSource``.
///
/// Shared by the probe and the segment decoder so both open files the same way and classify
/// failures the same way: a format nobody recognises is `notMedia`; a recognised format that
/// cannot be opened or analysed is `corruptMedia`.
final class InputContainer {
    let io: ByteSourceIO
    private(set) var format: UnsafeMutablePointer<AVFormatContext>?

    init(source: any ByteSource, formatHint: String?) throws(MediaError) {
        guard source.size > 0 else { throw MediaError(.notMedia, "the input is empty") }
        io = try ByteSourceIO(source: source)
        // The hint works as a file name: libavformat's probe gives extensions a small bonus.
        let name: String? = formatHint.map { $0.contains(".") ? $0 : "input.\($0)" }

        MediaLog.configure()
        // Probe the content only: with a name, libavformat trusts a matching extension and a
        // renamed text file would look like a damaged video instead of "not media".
        var detected: UnsafePointer<AVInputFormat>?
        let probed = av_probe_input_buffer2(io.context, &detected, nil, nil, 0, 0)
        if probed <= AVPROBE_SCORE_RETRY || detected == nil {
            if let error = io.sourceError { throw MediaError(.ioError, "reading the input failed: \(error)") }
            throw MediaError(.notMedia, "not a recognised media file (\(ffErrorString(probed)))")
        }
        // Formats that accept almost anything (plain text, raw streams) are not a video upload.
        let formatName = String(cString: detected!.pointee.name)
        if Self.rejectedFormats.contains(formatName) {
            throw MediaError(.notMedia, "not a recognised media file (looks like \(formatName))")
        }
        // Probing consumed bytes through the AVIO buffer; start over from the top.
        avio_seek(io.context, 0, SEEK_SET)

        guard var ctx = avformat_alloc_context() else {
            throw MediaError(.internalError, "out of memory allocating the format context")
        }
        ctx.pointee.pb = io.context
        ctx.pointee.flags |= AVFMT_FLAG_CUSTOM_IO
        ctx.pointee.interrupt_callback.callback = byteSourceInterrupt
        ctx.pointee.interrupt_callback.opaque = Unmanaged.passUnretained(io).toOpaque()
        var optional: UnsafeMutablePointer<AVFormatContext>? = ctx
        let opened = avformat_open_input(&optional, name, detected, nil)
        guard opened >= 0, let openedCtx = optional else {
            // avformat_open_input frees the context on failure (not our custom AVIO).
            if let error = io.sourceError { throw MediaError(.ioError, "reading the input failed: \(error)") }
            throw MediaError(.corruptMedia, "cannot open the \(formatName) container: \(ffErrorString(opened))")
        }
        ctx = openedCtx
        format = ctx
        let info = avformat_find_stream_info(ctx, nil)
        if info < 0 {
            if let error = io.sourceError { throw MediaError(.ioError, "reading the input failed: \(error)") }
            throw MediaError(.corruptMedia, "cannot read stream information: \(ffErrorString(info))")
        }
    }

    deinit {
        if format != nil { avformat_close_input(&format) }
    }

    /// The formats libavformat guesses for arbitrary bytes; treated as "not media".
    static let rejectedFormats: Set<String> = ["tty", "data", "txt", "srt", "webvtt", "ass", "microdvd",
                                               "subviewer", "subviewer1", "mpl2", "jacosub", "vplayer",
                                               "pjs", "realtext", "sami", "stl", "aqtitle", "lrc"]

    var ctx: UnsafeMutablePointer<AVFormatContext> { format! }

    /// The container's short name, e.g. `mov,mp4,m4a,3gp,3g2,mj2` or `matroska,webm`.
    var formatName: String { String(cString: ctx.pointee.iformat.pointee.name) }

    func stream(_ index: Int) -> UnsafeMutablePointer<AVStream>? {
        guard index >= 0, index < Int(ctx.pointee.nb_streams) else { return nil }
        return ctx.pointee.streams[index]
    }

    /// The stream to extract frames from: libavformat's best video stream, ignoring cover art
    /// (attached pictures), so that a video track behind audio or data tracks is still found.
    func videoStreamIndex() throws(MediaError) -> Int {
        let best = av_find_best_stream(ctx, AVMEDIA_TYPE_VIDEO, -1, -1, nil, 0)
        if best >= 0, let st = stream(Int(best)), st.pointee.disposition & AV_DISPOSITION_ATTACHED_PIC == 0 {
            return Int(best)
        }
        for i in 0..<Int(ctx.pointee.nb_streams) {
            let st = ctx.pointee.streams[i]!
            if st.pointee.codecpar.pointee.codec_type == AVMEDIA_TYPE_VIDEO,
               st.pointee.disposition & AV_DISPOSITION_ATTACHED_PIC == 0 {
                return i
            }
        }
        throw MediaError(.noVideoStream, "the file has no video stream")
    }

    /// Discards every stream but `index` so demuxing reads (and a remote source fetches) less.
    func selectOnly(stream index: Int) {
        for i in 0..<Int(ctx.pointee.nb_streams) {
            ctx.pointee.streams[i]!.pointee.discard = i == index ? AVDISCARD_DEFAULT : AVDISCARD_ALL
        }
    }
}
