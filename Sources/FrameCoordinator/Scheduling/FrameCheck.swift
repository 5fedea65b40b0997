import FrameCore
import FrameWire

/// What a lease's FRAMEs must be: the job's image format and, when the
/// coordinator knows the source's dimensions (from the probe stored with the
/// job), the exact output size the node's encoder produces for them
/// (``OutputOptions/outputSize(width:height:rotation:)``, the same rule).
public struct FrameExpectation: Sendable, Equatable {
    public var format: ImageFormat
    /// Nil when the job has no probe record to derive it from.
    public var size: (width: Int, height: Int)?

    public init(format: ImageFormat, size: (width: Int, height: Int)?) {
        self.format = format
        self.size = size
    }

    /// The expectation for a lease of a job whose source is `sourceWidth` x `sourceHeight`, rotated by `rotation`.
    public init(options: OutputOptions, sourceWidth: Int?, sourceHeight: Int?, rotation: Int?) {
        format = options.format
        if let w = sourceWidth, let h = sourceHeight, w > 0, h > 0 {
            size = options.outputSize(width: w, height: h, rotation: rotation ?? 0)
        } else {
            size = nil
        }
    }

    public static func == (a: Self, b: Self) -> Bool {
        a.format == b.format && a.size?.width == b.size?.width && a.size?.height == b.size?.height
    }
}

/// The coordinator's check of one FRAME before it is spooled for the user's
/// ZIP: a pure function of the message and the lease's ``FrameExpectation``.
///
/// Header-only and cheap: the PNG signature and IHDR, or the JPEG SOI, the
/// marker segments up to the first SOFn, and each format's trailer (IEND,
/// EOI) so a truncated file is caught; the header's dimensions must equal
/// both the FRAME's `width`/`height` and the expected output size, the
/// format must be the job's, and `seconds` must be finite (it goes into the
/// ZIP's manifest as JSON, which has no NaN). Pixel data is never decoded.
public enum FrameCheck {
    public enum Verdict: Sendable, Equatable {
        case valid
        /// Refuse with `INVALID_FRAME`, for this reason.
        case invalid(String)
    }

    public static func check(_ frame: Frame, against expected: FrameExpectation) -> Verdict {
        guard frame.seconds.isFinite else { return .invalid("FRAME.seconds is \(frame.seconds)") }
        guard frame.format == expected.format else {
            return .invalid("FRAME.format is \(frame.format) but the job asks for \(expected.format)")
        }
        let header: (width: Int, height: Int)
        // In place: a FRAME may be 16 MiB, and only its first and last bytes are read.
        switch frame.data.withUnsafeReadableBytes({ imageHeader($0, format: frame.format) }) {
        case .success(let size): header = size
        case .failure(let problem): return .invalid(problem.reason)
        }
        guard header.width == Int(frame.width), header.height == Int(frame.height) else {
            return .invalid("the image is \(header.width)x\(header.height) but FRAME says \(frame.width)x\(frame.height)")
        }
        if let size = expected.size, size.width != header.width || size.height != header.height {
            return .invalid("the image is \(header.width)x\(header.height) but the lease implies \(size.width)x\(size.height)")
        }
        return .valid
    }

    struct Problem: Error, Equatable { var reason: String }

    /// The dimensions in a PNG's or JPEG's header, after checking its signature and trailer.
    static func imageHeader(_ b: UnsafeRawBufferPointer, format: ImageFormat) -> Result<(width: Int, height: Int), Problem> {
        switch format {
        case .png: pngHeader(b)
        case .jpeg: jpegHeader(b)
        }
    }

    static let pngSignature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
    /// The IEND chunk: length 0, type, CRC.
    static let pngTrailer: [UInt8] = [0, 0, 0, 0, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82]

    static func pngHeader(_ b: UnsafeRawBufferPointer) -> Result<(width: Int, height: Int), Problem> {
        // Signature, then IHDR first: length 13, "IHDR", width, height (u32 big-endian), ...
        guard b.count >= 8 + 25 + pngTrailer.count, b[0..<8].elementsEqual(pngSignature) else {
            return .failure(Problem(reason: "not a PNG file (no PNG signature)"))
        }
        guard u32(b, 8) == 13, b[12..<16].elementsEqual("IHDR".utf8) else {
            return .failure(Problem(reason: "PNG without an IHDR chunk first"))
        }
        guard b[(b.count - pngTrailer.count)...].elementsEqual(pngTrailer) else {
            return .failure(Problem(reason: "PNG does not end with IEND (truncated?)"))
        }
        let w = Int(u32(b, 16)), h = Int(u32(b, 20))
        guard w > 0, h > 0 else { return .failure(Problem(reason: "PNG of size \(w)x\(h)")) }
        return .success((w, h))
    }

    static func jpegHeader(_ b: UnsafeRawBufferPointer) -> Result<(width: Int, height: Int), Problem> {
        guard b.count >= 4, b[0] == 0xFF, b[1] == 0xD8 else {
            return .failure(Problem(reason: "not a JPEG file (no SOI marker)"))
        }
        guard b[b.count - 2] == 0xFF, b[b.count - 1] == 0xD9 else {
            return .failure(Problem(reason: "JPEG does not end with EOI (truncated?)"))
        }
        // Walk the marker segments up to the first SOFn: each is FF, a marker
        // byte (FF fill bytes allowed before it), and a length covering itself.
        var i = 2
        while i < b.count {
            guard b[i] == 0xFF else { return .failure(Problem(reason: "JPEG marker expected at byte \(i)")) }
            while i < b.count && b[i] == 0xFF { i += 1 }
            guard i < b.count else { break }
            let marker = b[i]
            i += 1
            switch marker {
            case 0x01, 0xD0...0xD7:
                continue  // no length
            case 0xD8, 0xD9, 0xDA:
                return .failure(Problem(reason: "JPEG without a frame header (SOF) before its scan"))
            default:
                guard i + 2 <= b.count else { break }
                let length = Int(b[i]) << 8 | Int(b[i + 1])
                guard length >= 2, i + length <= b.count else {
                    return .failure(Problem(reason: "JPEG segment length \(length) runs past the file"))
                }
                if isStartOfFrame(marker) {
                    // length(2) precision(1) height(2) width(2) ...
                    guard length >= 8 else { return .failure(Problem(reason: "JPEG SOF segment too short")) }
                    let h = Int(b[i + 3]) << 8 | Int(b[i + 4])
                    let w = Int(b[i + 5]) << 8 | Int(b[i + 6])
                    guard w > 0, h > 0 else { return .failure(Problem(reason: "JPEG of size \(w)x\(h)")) }
                    return .success((w, h))
                }
                i += length
            }
        }
        return .failure(Problem(reason: "JPEG without a frame header (SOF)"))
    }

    /// SOF0...SOF15 except DHT (C4), JPG (C8) and DAC (CC).
    static func isStartOfFrame(_ marker: UInt8) -> Bool {
        (0xC0...0xCF).contains(marker) && marker != 0xC4 && marker != 0xC8 && marker != 0xCC
    }

    private static func u32(_ b: UnsafeRawBufferPointer, _ at: Int) -> UInt32 {
        UInt32(b[at]) << 24 | UInt32(b[at + 1]) << 16 | UInt32(b[at + 2]) << 8 | UInt32(b[at + 3])
    }
}

extension FrameCheck {
    /// ``imageHeader(_:format:)`` of a byte array (tests, tools).
    static func imageHeader(_ bytes: [UInt8], format: ImageFormat) -> Result<(width: Int, height: Int), Problem> {
        bytes.withUnsafeBytes { imageHeader($0, format: format) }
    }
}
