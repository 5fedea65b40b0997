import FrameCore
import Foundation
import NIOCore
import NIOPosix

/// Where the source videos live: the storage seam between ingest, the nodes' READs, cancellation
/// and retention.
///
/// Every upload is first staged on the coordinator's disk at `uploads/<job>/input.<ext>` and
/// fsynced (the multipart/form-data route and tus both do this, and the probe needs a seekable
/// file). Ingest then calls ``persist(job:ext:file:size:)`` before the job row is committed, so an
/// upload is acknowledged only once it is durable where READs will find it, and
/// ``released(job:)`` once the job is committed. The default, ``LocalSourceStore``, keeps the
/// staged file as the source (today's behaviour, unchanged); ``S3SourceStore`` copies it to the
/// bucket and drops the staging copy. A store that cannot be reached throws an error with the
/// code `OBJECT_STORE_UNAVAILABLE` (HTTP 503 for an upload, a retryable READ_DATA status for a node).
public protocol SourceStore: Sendable {
    /// Makes the staged upload at `file` durable as job `job`'s source; returns once it is.
    func persist(job: UUID, ext: String, file: URL, size: Int64) async throws
    /// Called once the job is committed: drops staging copies ``persist(job:ext:file:size:)`` no longer needs.
    func released(job: UUID) async
    /// `count` bytes at `offset` of job `job`'s `size`-byte source (fewer only at its end), for a
    /// READ under `lease` (the unit read-ahead is kept per).
    func read(lease: LeaseRef, job: UUID, ext: String, size: Int64, offset: Int64, count: Int) async throws -> ByteBuffer
    /// Deletes what ``persist(job:ext:file:size:)`` stored (retention, cancellation, a job that
    /// could not be committed); a source already gone is fine.
    func delete(job: UUID) async throws
    /// Housekeeping run with each retention sweep: frees what interrupted uploads left in the store.
    func sweepAbandoned() async throws
}

/// The embedded default: the staged upload is the source, read with `pread` from
/// `uploads/<job>/input.<ext>`; the upload folder goes with the job's other files (retention).
public struct LocalSourceStore: SourceStore {
    let layout: StorageLayout
    let reader: SourceReader

    public init(layout: StorageLayout, threadPool: NIOThreadPool = .singleton) {
        self.layout = layout
        self.reader = SourceReader(threadPool: threadPool)
    }

    /// The upload receivers already fsynced the file and its directory.
    public func persist(job: UUID, ext: String, file: URL, size: Int64) async throws {}

    public func released(job: UUID) async {}

    public func read(lease: LeaseRef, job: UUID, ext: String, size: Int64, offset: Int64, count: Int) async throws -> ByteBuffer {
        try await reader.read(layout.input(job, ext: ext), offset: offset, count: count)
    }

    /// Nothing beyond the upload folder, which retention removes with the spool and the ZIP.
    public func delete(job: UUID) async throws {}

    /// Start-up recovery (``StorageRecovery``) already removes upload folders of uncommitted jobs.
    public func sweepAbandoned() async throws {}
}
