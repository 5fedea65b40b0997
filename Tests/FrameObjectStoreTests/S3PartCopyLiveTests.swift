import Crypto
import Foundation
import NIOCore
import Testing
@testable import FrameObjectStore
import FrameTestSupport

/// UploadPartCopy (whole objects and `x-amz-copy-source-range`) against the real store: what the
/// slice assembler builds archives with (docs/distributed-assembly.md).
@Suite(.serialized) struct S3PartCopyLiveTests {
    static func client(_ stem: String) async throws -> S3Client? {
        guard let configuration = S3LiveStore.configuration(bucket: S3LiveStore.uniqueBucket(stem)) else {
            print("S3PartCopyLiveTests skipped: \(S3LiveStore.skipReason!)")
            return nil
        }
        let client = try S3Client(configuration: configuration)
        try await client.createBucket()
        return client
    }

    @Test func partsCopiedServerSideWholeAndByRangeAssembleTheObject() async throws {
        guard let s3 = try await Self.client("copy") else { return }
        let mib = 1 << 20
        let a = S3ClientLiveTests.pattern(5 * mib + 17, seed: 3)
        let b = S3ClientLiveTests.pattern(7 * mib, seed: 4)
        try await s3.putObject("parts/a b.zipslice", body: a)
        try await s3.putObject("parts/b.zipslice", body: b)
        let upload = try await s3.createMultipartUpload("out.zip")
        let first = try await s3.uploadPartCopy("out.zip", uploadID: upload, partNumber: 1, source: "parts/a b.zipslice")
        let second = try await s3.uploadPartCopy(
            "out.zip", uploadID: upload, partNumber: 2, source: "parts/b.zipslice", range: Int64(mib)...Int64(7 * mib - 1))
        let tail = S3ClientLiveTests.pattern(1000, seed: 5)
        let third = try await s3.uploadPart("out.zip", uploadID: upload, partNumber: 3, body: tail)
        try await s3.completeMultipartUpload("out.zip", uploadID: upload, parts: [
            S3CompletedPart(partNumber: 1, etag: first), S3CompletedPart(partNumber: 2, etag: second),
            S3CompletedPart(partNumber: 3, etag: third),
        ])
        var expected = a
        var bRange = b.getSlice(at: mib, length: 6 * mib)!
        expected.writeBuffer(&bRange)
        var tailCopy = tail
        expected.writeBuffer(&tailCopy)
        let back = try await s3.getObject("out.zip", limit: 32 << 20)
        #expect(back.readableBytes == expected.readableBytes)
        #expect(back.withUnsafeReadableBytes { SHA256.hash(data: $0) } == expected.withUnsafeReadableBytes { SHA256.hash(data: $0) })
    }

    @Test func copyingAMissingObjectIsNotFoundAndTheUploadCanBeAborted() async throws {
        guard let s3 = try await Self.client("copymiss") else { return }
        let upload = try await s3.createMultipartUpload("out.zip")
        await #expect(throws: S3Error.self) {
            _ = try await s3.uploadPartCopy("out.zip", uploadID: upload, partNumber: 1, source: "parts/none.zipslice")
        }
        try await s3.abortMultipartUpload("out.zip", uploadID: upload)
        #expect(try await s3.headObject("out.zip") == nil)
    }
}
