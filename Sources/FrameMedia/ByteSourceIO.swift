import CFFmpeg
import FrameCore

/// Bridges a ``ByteSource`` to libavformat through a custom `AVIOContext`.
///
/// libavformat calls back into this object from the decoding thread; the callbacks block on
/// the source (possibly a network fetch). It counts bytes read for the segment statistics and
/// checks the current cancellation predicate so a cancelled lease stops inside a long read.
/// The buffer comes from `av_malloc` because libavformat may replace it; `deinit` frees the
/// context's *current* buffer for the same reason.
final class ByteSourceIO {
    /// Size of the AVIO buffer: large enough to keep network round trips few, small enough
    /// that a seek does not fetch much unused data.
    static let bufferSize: Int32 = 64 * 1024

    let source: any ByteSource
    private(set) var context: UnsafeMutablePointer<AVIOContext>?
    var position: Int64 = 0
    var bytesRead: Int64 = 0
    /// Checked on every read; set by the decoder for the duration of one run.
    var isCancelled: (@Sendable () -> Bool)?
    /// The last error the source threw, so the caller can report it instead of FFmpeg's `EIO`.
    var sourceError: (any Error)?

    init(source: any ByteSource) throws(MediaError) {
        self.source = source
        guard let buffer = av_malloc(Int(Self.bufferSize)) else {
            throw MediaError(.internalError, "out of memory allocating the AVIO buffer")
        }
        let opaque = Unmanaged.passUnretained(self).toOpaque()
        guard let ctx = avio_alloc_context(
            buffer.assumingMemoryBound(to: UInt8.self), Self.bufferSize, 0, opaque,
            byteSourceReadPacket, nil, byteSourceSeek)
        else {
            av_free(buffer)
            throw MediaError(.internalError, "out of memory allocating the AVIO context")
        }
        ctx.pointee.seekable = AVIO_SEEKABLE_NORMAL
        context = ctx
    }

    deinit {
        if context != nil {
            av_freep(&context!.pointee.buffer)
            avio_context_free(&context)
        }
    }

    /// Whether the current run was cancelled.
    var cancelled: Bool { isCancelled?() ?? false }

    fileprivate func readPacket(_ buf: UnsafeMutablePointer<UInt8>?, _ size: Int32) -> Int32 {
        if cancelled { return ff_averror_exit() }
        let total = source.size
        guard let buf, size > 0 else { return 0 }
        if position >= total { return ff_averror_eof() }
        let wanted = Int(min(Int64(size), total - position))
        do {
            let n = try source.read(at: position, into: UnsafeMutableRawBufferPointer(start: buf, count: wanted))
            if n <= 0 { return ff_averror_eof() }
            let count = min(n, wanted)
            position += Int64(count)
            bytesRead += Int64(count)
            return Int32(count)
        } catch {
            sourceError = error
            return ff_averror(EIO)
        }
    }

    fileprivate func seek(_ offset: Int64, _ whence: Int32) -> Int64 {
        if whence & ff_avseek_size() != 0 { return source.size }
        let mode = whence & ~ff_avseek_force()
        let target: Int64
        switch mode {
        case SEEK_SET: target = offset
        case SEEK_CUR: target = position + offset
        case SEEK_END: target = source.size + offset
        default: return Int64(ff_averror(EINVAL))
        }
        guard target >= 0 else { return Int64(ff_averror(EINVAL)) }
        position = target
        return target
    }
}

private func byteSourceReadPacket(_ opaque: UnsafeMutableRawPointer?, _ buf: UnsafeMutablePointer<UInt8>?, _ size: Int32) -> Int32 {
    guard let opaque else { return ff_averror(EINVAL) }
    return Unmanaged<ByteSourceIO>.fromOpaque(opaque).takeUnretainedValue().readPacket(buf, size)
}

private func byteSourceSeek(_ opaque: UnsafeMutableRawPointer?, _ offset: Int64, _ whence: Int32) -> Int64 {
    guard let opaque else { return Int64(ff_averror(EINVAL)) }
    return Unmanaged<ByteSourceIO>.fromOpaque(opaque).takeUnretainedValue().seek(offset, whence)
}

/// FFmpeg's interrupt callback: lets blocking demuxer loops notice cancellation.
func byteSourceInterrupt(_ opaque: UnsafeMutableRawPointer?) -> Int32 {
    guard let opaque else { return 0 }
    return Unmanaged<ByteSourceIO>.fromOpaque(opaque).takeUnretainedValue().cancelled ? 1 : 0
}

/// FFmpeg's message for an error code.
func ffErrorString(_ code: Int32) -> String {
    var buffer = [CChar](repeating: 0, count: 128)
    buffer.withUnsafeMutableBufferPointer { ff_error_string(code, $0.baseAddress, $0.count) }
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

extension Rational {
    init(_ q: AVRational) { self.init(q.num, q.den) }
    var av: AVRational { AVRational(num: num, den: den) }
}
