import FrameAPI
import FrameObjectStore
import Foundation
import NIOCore
import NIOPosix

/// Resumable-upload pieces in the bucket (`storage.s3.uploads: s3`), at
/// ``ObjectKeys/tusPiece(_:bytes:token:)``: what lets any coordinator continue or finish a tus
/// upload another one began (see ``TusPieceStore``).
///
/// A piece is one checkpoint's worth of bytes (`upload.tus_checkpoint`, 8 MiB by default, or
/// what a shorter chunk brought), read from the partial file on the thread pool and stored with
/// one PUT or, past `partSize`, a multipart upload: memory is one part per upload in flight.
struct S3TusPieceStore: TusPieceStore {
    let client: S3Client
    let partSize: Int
    let threadPool: NIOThreadPool

    func store(upload: UUID, file: URL, bytes: Range<Int64>) async throws -> String {
        let token = String(UUID().uuidString.prefix(8)).lowercased()
        let key = ObjectKeys.tusPiece(upload, bytes: bytes, token: token)
        _ = try await ObjectFileUpload.upload(
            client: client, key: key, file: file, bytes: bytes, partSize: partSize,
            contentType: "application/octet-stream", threadPool: threadPool)
        return key
    }

    func fetch(key: String, into sink: (ByteBuffer) async throws -> Void) async throws {
        try await client.streamObject(key, timeout: client.configuration.requestTimeout) { _, body in
            while let piece = try await body.next() { try await sink(piece) }
        }
    }

    func discard(upload: UUID) async throws {
        try await client.deleteAll(prefix: ObjectKeys.tusPieces(upload))
    }
}
