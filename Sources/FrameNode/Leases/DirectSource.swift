import FrameCore
import FrameObjectStore
import FrameWire
import Foundation
import NIOCore
import NIOPosix

/// The presigned URL of a `LEASE_URL`, read with HTTP Range requests from a decode thread.
///
/// ``RemoteByteSource`` asks it for its 1 MiB chunks before it falls back to READ. Each read
/// blocks its caller (a decode thread or the prefetch queue, never the cooperative pool) while
/// the request runs on NIO's event loops; errors are ``FrameFlowError``s with the object
/// store's codes: `OBJECT_STORE_REJECTED` (403: expired or tampered URL, any other refusal, or
/// a wrong answer), `OBJECT_STORE_UNAVAILABLE` (no connection, timeout, 5xx), `NOT_FOUND`.
struct DirectSource: Sendable {
    let reader: PresignedRangeReader
    /// When the URL stops working (LEASE_URL `expiresAtMillis`).
    let expiresAt: Date

    /// nil, with the reason, when the URL cannot be used at all (not http(s), expired already).
    static func make(_ leaseURL: LeaseURL, now: Date = Date(), timeout: Duration = .seconds(30)) -> Result<DirectSource, FrameFlowError> {
        let expiresAt = Date(timeIntervalSince1970: Double(leaseURL.expiresAtMillis) / 1000)
        guard expiresAt > now else {
            return .failure(FrameFlowError(.objectStoreRejected, "the source URL expired before the lease started"))
        }
        do {
            return .success(DirectSource(reader: try PresignedRangeReader(url: leaseURL.sourceURL, timeout: timeout), expiresAt: expiresAt))
        } catch {
            return .failure(FrameFlowError(error.errorCode, "unusable source URL: \(error)"))
        }
    }

    /// Exactly `length` bytes at `offset` (the caller never asks past the end of the source).
    func read(offset: Int64, length: Int) throws(FrameFlowError) -> [UInt8] {
        let reader = self.reader
        do {
            let buffer = try MultiThreadedEventLoopGroup.singleton.any()
                .makeFutureWithTask { try await reader.read(offset: offset, length: length) }
                .wait()
            guard buffer.readableBytes == length else {
                throw FrameFlowError(.objectStoreRejected,
                    "\(reader.redactedURL) answered \(buffer.readableBytes) of \(length) bytes at \(offset)")
            }
            return Array(buffer.readableBytesView)
        } catch let error as FrameFlowError {
            throw error
        } catch let error as S3Error {
            throw FrameFlowError(error.errorCode, error.description)
        } catch {
            throw FrameFlowError(.objectStoreUnavailable, "reading \(reader.redactedURL): \(error)")
        }
    }
}
