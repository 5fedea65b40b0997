import CFFmpeg
import FrameCore

/// MD5 of a decoded picture exactly as `ffmpeg -f framemd5` computes it: the rawvideo
/// encoder packs the planes with `av_image_copy_to_buffer` (alignment 1) and the muxer
/// hashes that buffer with `av_hash` "md5". Used to check samples against the ffmpeg tool.
enum PictureDigest {
    static func md5(_ frame: UnsafeMutablePointer<AVFrame>) throws(MediaError) -> String {
        let format = AVPixelFormat(rawValue: frame.pointee.format)
        let w = frame.pointee.width, h = frame.pointee.height
        let size = av_image_get_buffer_size(format, w, h, 1)
        guard size > 0 else { throw MediaError(.decodeFailed, "cannot size a \(w)x\(h) picture") }
        var buffer = [UInt8](repeating: 0, count: Int(size))
        let copied = buffer.withUnsafeMutableBufferPointer { out in
            withUnsafePointer(to: &frame.pointee.data) { dataTuple in
                withUnsafePointer(to: &frame.pointee.linesize) { lineTuple in
                    dataTuple.withMemoryRebound(to: UnsafePointer<UInt8>?.self, capacity: 8) { planes in
                        lineTuple.withMemoryRebound(to: Int32.self, capacity: 8) { lines in
                            av_image_copy_to_buffer(out.baseAddress, size, planes, lines, format, w, h, 1)
                        }
                    }
                }
            }
        }
        guard copied >= 0 else { throw MediaError(.decodeFailed, "cannot pack the picture: \(ffErrorString(copied))") }
        var hash: OpaquePointer?
        guard av_hash_alloc(&hash, "md5") >= 0, let hash else { throw MediaError(.internalError, "md5 unavailable") }
        defer { var h: OpaquePointer? = hash; av_hash_freep(&h) }
        av_hash_init(hash)
        av_hash_update(hash, buffer, Int(size))
        var hex = [UInt8](repeating: 0, count: 33)
        av_hash_final_hex(hash, &hex, 33)
        return String(decoding: hex.prefix { $0 != 0 }, as: UTF8.self)
    }
}
