import FrameCore
import Foundation

/// The `manifest.json` stored next to the frames: what was extracted from what.
///
/// Field names are snake_case in JSON because API clients read the same document. Each
/// frame's `seconds` is the source frame's presentation time from the start of the video.
public struct ArchiveManifest: Sendable, Hashable, Codable {
    /// One image in the archive.
    public struct Frame: Sendable, Hashable, Codable {
        public var name: String
        public var seconds: Double
        public init(name: String, seconds: Double) {
            self.name = name
            self.seconds = seconds
        }
    }

    public var source: String
    public var durationSeconds: Double
    public var codec: String
    public var width: Int
    public var height: Int
    /// The requested rate as text, e.g. `1`, `1/10` or `5/2`.
    public var rate: String
    public var format: String
    public var frameCount: Int
    public var frames: [Frame]

    public init(source: String, durationSeconds: Double, codec: String, width: Int, height: Int, rate: Rational,
                format: ImageFormat, frames: [Frame]) {
        self.source = source
        self.durationSeconds = durationSeconds
        self.codec = codec
        self.width = width
        self.height = height
        self.rate = rate.description
        self.format = format.fileExtension
        self.frameCount = frames.count
        self.frames = frames
    }

    /// The `manifest.json` bytes: pretty-printed with sorted keys, the one encoding both archive
    /// writers (libzip's and the slices' tail) store, so their manifests are byte-identical.
    public func encoded() throws(ArchiveError) -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        do { return try encoder.encode(self) } catch {
            throw ArchiveError(.archiveFailed, "cannot encode the manifest: \(error)")
        }
    }

    enum CodingKeys: String, CodingKey {
        case source, codec, width, height, rate, format, frames
        case durationSeconds = "duration_seconds"
        case frameCount = "frame_count"
    }
}
