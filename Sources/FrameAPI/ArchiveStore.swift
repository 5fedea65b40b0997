import Foundation
import NIOCore

/// Where finished ZIPs are kept: the storage seam between assembly, downloads and retention.
///
/// Assembly writes the ZIP to `results/<job>.zip` on the coordinator's disk first (libzip needs a
/// seekable file); ``publish(job:file:)`` then makes it durable where downloads will find it, and
/// the job is marked COMPLETED only after that returns. The default, ``DirectoryArchiveStore``,
/// keeps it where it is; the object-store implementation (FrameCoordinator's `S3ArchiveStore`)
/// uploads it to a bucket. A store that cannot be reached throws, and the caller retries later
/// rather than failing the job.
public protocol ArchiveStore: Sendable {
    /// Makes the assembled archive at `file` durable; returns once it is.
    func publish(job: UUID, file: URL) async throws
    /// Called after COMPLETED is recorded: drops copies `publish` no longer needs.
    func released(job: UUID) async
    /// How a download of the job's archive is answered.
    func locate(job: UUID, downloadName: String) async throws -> ArchiveLocation
    /// Retention: removes the archive (one already gone is fine).
    func delete(job: UUID) async throws
}

/// Where a download's bytes come from.
public enum ArchiveLocation: Sendable {
    /// A file on this machine, served with ranges from disk.
    case file(path: String, size: Int)
    /// Somewhere the client fetches itself (a presigned object-store URL): answered with a redirect.
    case redirect(URL)
    /// Streamed through this process: `read` hands the bytes of an inclusive range to `sink` in order,
    /// waiting for each `sink` call (the client's pace is the store's pace: nothing piles up).
    case stream(size: Int, read: @Sendable (_ range: ClosedRange<Int>, _ sink: (ByteBuffer) async throws -> Void) async throws -> Void)
    /// Not there (expired, or never published).
    case missing
}

/// The embedded default: archives stay in `results/<job>.zip` on the coordinator's disk.
public struct DirectoryArchiveStore: ArchiveStore {
    public let resultsDirectory: URL

    public init(resultsDirectory: URL) {
        self.resultsDirectory = resultsDirectory
    }

    func path(_ job: UUID) -> String {
        resultsDirectory.appendingPathComponent("\(job.uuidString.lowercased()).zip").path
    }

    /// Assembly already renamed the finished archive into place.
    public func publish(job: UUID, file: URL) async throws {}

    public func released(job: UUID) async {}

    public func locate(job: UUID, downloadName: String) async throws -> ArchiveLocation {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path(job)),
              let size = (attributes[.size] as? NSNumber)?.intValue
        else { return .missing }
        return .file(path: path(job), size: size)
    }

    public func delete(job: UUID) async throws {
        try? FileManager.default.removeItem(atPath: path(job))
    }
}
