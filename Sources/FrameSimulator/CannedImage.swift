import FrameCore

/// Image bytes of a given format and size that pass the coordinator's
/// header check (FrameCheck: PNG signature and IHDR, or JPEG SOI, SOF and
/// EOI, with the expected dimensions), padded to about `bytes`. The pixel
/// data is filler: nobody decodes a load test's frames.
public enum CannedImage {
    public static func make(_ format: ImageFormat, width: Int, height: Int, bytes: Int) -> [UInt8] {
        switch format {
        case .png: png(width: UInt32(clamping: width), height: UInt32(clamping: height), bytes: bytes)
        case .jpeg: jpeg(width: UInt16(clamping: width), height: UInt16(clamping: height), bytes: bytes)
        }
    }

    static func png(width: UInt32, height: UInt32, bytes: Int) -> [UInt8] {
        var b: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        func u32(_ v: UInt32) { b += [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
        u32(13); b += Array("IHDR".utf8); u32(width); u32(height); b += [8, 2, 0, 0, 0]; u32(0)
        let filler = max(1, bytes - 33 - 12 - 12)
        u32(UInt32(filler)); b += Array("IDAT".utf8); b += [UInt8](repeating: 0x5A, count: filler); u32(0)
        u32(0); b += Array("IEND".utf8); b += [0xAE, 0x42, 0x60, 0x82]
        return b
    }

    static func jpeg(width: UInt16, height: UInt16, bytes: Int) -> [UInt8] {
        var b: [UInt8] = [0xFF, 0xD8]
        b += [0xFF, 0xE0, 0x00, 0x10] + Array("JFIF\0".utf8) + [1, 1, 0, 0, 1, 0, 1, 0, 0]
        b += [0xFF, 0xC0, 0x00, 0x0B, 8, UInt8(height >> 8), UInt8(height & 0xFF), UInt8(width >> 8), UInt8(width & 0xFF),
              1, 1, 0x11, 0]
        b += [0xFF, 0xDA, 0x00, 0x08, 1, 1, 0, 0, 0x3F, 0]
        // Entropy-coded filler without 0xFF, so no marker appears in it.
        b += [UInt8](repeating: 0x5A, count: max(1, bytes - b.count - 2))
        b += [0xFF, 0xD9]
        return b
    }
}
