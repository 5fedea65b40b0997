import FrameCore

/// File names of frames inside an archive: `frame_0001.png`, 1-based, zero-padded to at
/// least four digits and to as many as the frame count needs, so names sort in sample order.
public enum FrameNaming {
    /// The name of sample `sampleIndex` (0-based) of `total` samples.
    public static func name(sampleIndex: Int, total: Int, format: ImageFormat) -> String {
        let width = max(4, String(max(total, 1)).count)
        let number = String(sampleIndex + 1)
        return "frame_" + String(repeating: "0", count: max(0, width - number.count)) + number + "." + format.fileExtension
    }
}
