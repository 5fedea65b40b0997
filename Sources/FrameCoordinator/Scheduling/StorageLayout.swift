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

/// The object-store keys of a job's files (`storage.kind: s3`), relative to the configured
/// `storage.s3.prefix` (``FrameObjectStore/S3Client`` adds it): the one place that names them.
///
/// They mirror the disk layout: `uploads/<job>/input.<ext>` (the accepted upload, the source the
/// nodes read) and `archives/<job>.zip` (the finished ZIP). A presigned GET of a lease's source
/// must be made from ``upload(_:ext:)`` so that what nodes fetch is what ingest stored.
public enum ObjectKeys {
    /// `uploads/<job>/input.<ext>`: the source video of `job`.
    public static func upload(_ job: UUID, ext: String) -> String { uploadFolder(job) + "input.\(ext)" }
    /// `uploads/<job>/`: everything stored for `job`'s upload (deleted as a whole).
    public static func uploadFolder(_ job: UUID) -> String { "uploads/\(job.lowercased)/" }
    /// `uploads/<id>/tus/`: the pieces of resumable upload `id` (its id is the job's), deleted
    /// once the upload ends.
    public static func tusPieces(_ upload: UUID) -> String { uploadFolder(upload) + "tus/" }
    /// One piece: the upload's bytes `bytes`, with a token so that two writers racing for the same
    /// offset never overwrite each other's object.
    public static func tusPiece(_ upload: UUID, bytes: Range<Int64>, token: String) -> String {
        tusPieces(upload) + String(format: "%016llx-%016llx-", bytes.lowerBound, bytes.upperBound) + token
    }
    /// `uploads/`: where every job's upload lives (stale multipart uploads are looked for here).
    public static let uploadsRoot = "uploads/"
    /// `archives/<job>.zip`: the finished archive of `job`.
    public static func archive(_ job: UUID) -> String { "archives/\(job.lowercased).zip" }
}

extension UUID {
    var lowercased: String { uuidString.lowercased() }
}
