import Foundation
import NIOCore

/// Where a resumable upload's acknowledged bytes are kept besides the disk of the coordinator that
/// received them, so that any coordinator can take the next chunk or finish the upload.
///
/// With several coordinators and no shared disk (sources in an object store), a tus client behind
/// a load balancer may send its chunks to different coordinators. Each durable stretch of bytes is
/// therefore also stored as a piece (one object) before the offset that acknowledges it moves; a
/// coordinator that does not hold a complete local copy rebuilds one from the pieces first
/// (``TusUploads``). Without a piece store (local storage, where the coordinators share
/// `uploads_dir`) the local partial file is the only copy, as before.
public protocol TusPieceStore: Sendable {
    /// Stores the bytes `bytes` of upload `upload`, read from `file` at the same offsets; returns the
    /// piece's key once it is durable in the store.
    func store(upload: UUID, file: URL, bytes: Range<Int64>) async throws -> String
    /// Hands the bytes of the piece `key`, in order, to `sink`.
    func fetch(key: String, into sink: (ByteBuffer) async throws -> Void) async throws
    /// Deletes every piece kept for `upload`, recorded or not (a writer that lost the race for the
    /// offset leaves an unrecorded one).
    func discard(upload: UUID) async throws
}
