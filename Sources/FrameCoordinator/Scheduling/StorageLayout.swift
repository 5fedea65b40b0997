import FrameCore
import Foundation

/// Where a job's files live on the coordinator's disk.
///
/// `uploads/<job>/input.<ext>` (the accepted upload, kept until the job
/// expires), `spool/<job>/` (frames streamed back by nodes, deleted after
/// assembly or cancellation), `results/<job>.zip` (the finished archive).
/// Names are derived from the job id and sample index only, so a redelivered
/// frame overwrites itself instead of duplicating.
public struct StorageLayout: Sendable {
    public var uploads: URL
    public var spool: URL
    public var results: URL

    public init(uploads: URL, spool: URL, results: URL) {
        self.uploads = uploads
        self.spool = spool
        self.results = results
    }

    public func uploadDirectory(_ job: UUID) -> URL { uploads.appendingPathComponent(job.lowercased) }
    public func input(_ job: UUID, ext: String) -> URL { uploadDirectory(job).appendingPathComponent("input.\(ext)") }
    public func spoolDirectory(_ job: UUID) -> URL { spool.appendingPathComponent(job.lowercased) }
    public func spoolFrame(_ job: UUID, sample: UInt32, format: ImageFormat) -> URL {
        spoolDirectory(job).appendingPathComponent(String(format: "%09u.%@", sample, format.fileExtension))
    }
    /// Timestamps of one finished segment's frames (JSON), written when the segment is accepted.
    public func spoolTimestamps(_ job: UUID, segment: UInt32) -> URL {
        spoolDirectory(job).appendingPathComponent(String(format: "segment-%06u.json", segment))
    }
    public func result(_ job: UUID) -> URL { results.appendingPathComponent("\(job.lowercased).zip") }

    /// Creates the three roots if needed.
    public func prepare() throws {
        for dir in [uploads, spool, results] {
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        }
    }
}

extension UUID {
    var lowercased: String { uuidString.lowercased() }
}

extension StorageLayout {
    /// The object-store key of a job's source (`uploads/<job>/input.<ext>`, under the store's
    /// configured prefix, which ``S3Client`` adds): the mirror of ``input(_:ext:)`` on disk.
    /// Uploads land there with `storage.s3.uploads: s3`; LEASE_URL presigns it.
    public static func uploadObjectKey(_ job: UUID, ext: String) -> String {
        "uploads/\(job.lowercased)/input.\(ext)"
    }
}
