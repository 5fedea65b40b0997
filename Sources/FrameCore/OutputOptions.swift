/// The image format of extracted frames.
public enum ImageFormat: UInt8, Sendable, Hashable, Codable, CaseIterable {
    /// Lossless PNG (the default).
    case png = 0
    /// Baseline JPEG from libavcodec's mjpeg encoder.
    case jpeg = 1

    /// The file extension used in archives: `png` or `jpg`.
    public var fileExtension: String { self == .png ? "png" : "jpg" }

    /// Parses `png`, `jpg` or `jpeg` (case-insensitive).
    public init?(name: String) {
        switch name.lowercased() {
        case "png": self = .png
        case "jpg", "jpeg": self = .jpeg
        default: return nil
        }
    }
}

/// How sampled frames are encoded: format, JPEG quality and an optional
/// bounding box that downscales while keeping the aspect ratio.
public struct OutputOptions: Sendable, Hashable, Codable {
    public var format: ImageFormat
    /// JPEG quality on FFmpeg's `-q:v` scale, 1 (best) to 31 (worst). Ignored for PNG.
    public var quality: UInt8
    /// Largest output width in pixels; 0 means no limit.
    public var maxWidth: UInt32
    /// Largest output height in pixels; 0 means no limit.
    public var maxHeight: UInt32

    public init(format: ImageFormat = .png, quality: UInt8 = 2, maxWidth: UInt32 = 0, maxHeight: UInt32 = 0) {
        self.format = format
        self.quality = quality
        self.maxWidth = maxWidth
        self.maxHeight = maxHeight
    }

    /// Checks the ranges; returns a `INVALID_OPTIONS` error naming the bad field.
    public func validated() throws(FrameFlowError) -> OutputOptions {
        guard (1...31).contains(quality) else {
            throw FrameFlowError(.invalidOptions, "quality must be between 1 (best) and 31 (worst), got \(quality)")
        }
        guard maxWidth <= 16384, maxHeight <= 16384 else {
            throw FrameFlowError(.invalidOptions, "maxWidth/maxHeight must be at most 16384")
        }
        return self
    }

    /// The size of the image made from a `width`x`height` picture shown with
    /// `rotation` (clockwise degrees) and bounded by these options: rotated,
    /// then scaled down (never up) to fit `maxWidth` x `maxHeight`, keeping the
    /// aspect ratio, each side rounded to the nearest pixel and at least 1.
    ///
    /// The one rule for it: the node's encoder sizes its output with it, and
    /// the coordinator checks each FRAME against it (``FrameCheck``).
    public func outputSize(width: Int, height: Int, rotation: Int) -> (width: Int, height: Int) {
        var w = Double(rotation % 180 == 0 ? width : height)
        var h = Double(rotation % 180 == 0 ? height : width)
        var scale = 1.0
        if maxWidth > 0 { scale = min(scale, Double(maxWidth) / w) }
        if maxHeight > 0 { scale = min(scale, Double(maxHeight) / h) }
        if scale < 1 {
            w = max(1, (w * scale).rounded())
            h = max(1, (h * scale).rounded())
        }
        return (Int(w), Int(h))
    }
}
