import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import Testing
@testable import FrameObjectStore
import FrameTestSupport

/// The client against a real S3-compatible server (OpenStack Swift + s3api, started by scripts/test).
@Suite(.serialized) struct S3ClientLiveTests {
    func client(_ stem: String, now: @escaping @Sendable () -> Date = { Date() }) async throws -> S3Client? {
        guard let configuration = S3LiveStore.configuration(bucket: S3LiveStore.uniqueBucket(stem)) else {
            print("S3ClientLiveTests skipped: \(S3LiveStore.skipReason!)")
            return nil
        }
        let client = try S3Client(configuration: configuration, now: now)
        try await client.createBucket()
        return client
    }

    static func pattern(_ count: Int, seed: UInt8) -> ByteBuffer {
        var bytes = [UInt8](repeating: 0, count: count)
        var x = UInt32(seed) &* 2_654_435_761 | 1
        bytes.withUnsafeMutableBufferPointer { p in
            for i in p.indices {
                x ^= x << 13; x ^= x >> 17; x ^= x << 5
                p[i] = UInt8(truncatingIfNeeded: x)
            }
        }
        return ByteBuffer(bytes: bytes)
    }

    @Test func putGetHeadRangeDelete() async throws {
        guard let s3 = try await client("obj") else { return }
        let body = Self.pattern(100_000, seed: 1)
        try await s3.putObject("dir/a b+c.bin", body: body)
        #expect(try await s3.getObject("dir/a b+c.bin") == body)
        let head = try #require(try await s3.headObject("dir/a b+c.bin"))
        #expect(head.size == 100_000)
        // Range: the bytes asked for, and the total size from Content-Range.
        let (slice, total) = try await s3.streamObject("dir/a b+c.bin", range: 1000...1999) { total, reader in
            (try await reader.collect(upTo: 4096), total)
        }
        #expect(slice == body.getSlice(at: 1000, length: 1000))
        #expect(total == 100_000)
        try await s3.deleteObject("dir/a b+c.bin")
        #expect(try await s3.headObject("dir/a b+c.bin") == nil)
        await #expect(throws: S3Error.self) { try await s3.getObject("dir/a b+c.bin") }
        do {
            _ = try await s3.getObject("dir/a b+c.bin")
        } catch let error as S3Error {
            #expect(error == .notFound(code: "NoSuchKey", key: "dir/a b+c.bin"))
        }
        // Deleting what is gone is not an error (retention may run twice).
        try await s3.deleteObject("dir/a b+c.bin")
    }

    @Test func listingPagesUnderThePrefix() async throws {
        guard let s3 = try await client("list") else { return }
        for i in 0..<5 { try await s3.putObject("jobs/\(i).zip", body: ByteBuffer(string: "zip \(i)")) }
        try await s3.putObject("other/x", body: ByteBuffer(string: "x"))
        var keys: [String] = []
        var token: String?
        var pages = 0
        repeat {
            let page = try await s3.listObjects(prefix: "jobs/", continuationToken: token, maxKeys: 2)
            keys += page.objects.map(\.key)
            token = page.next
            pages += 1
        } while token != nil && pages < 10
        #expect(keys == (0..<5).map { "jobs/\($0).zip" })
        #expect(pages == 3)
    }

    @Test func multipartUploadStreamsAndAssembles() async throws {
        guard let s3 = try await client("mpu") else { return }
        // 2 full parts of 5 MiB and a tail, written in odd-sized pieces as an HTTP body arrives.
        let total = 2 * S3MultipartWriter.minimumPartSize + 123_457
        let data = Self.pattern(total, seed: 7)
        var writer = S3MultipartWriter(client: s3, key: "big.bin", partSize: S3MultipartWriter.minimumPartSize)
        var offset = 0
        while offset < total {
            let n = min(777_777, total - offset)
            try await writer.write(data.getSlice(at: offset, length: n)!)
            offset += n
        }
        #expect(writer.parts.count == 2)
        #expect(try await s3.headObject("big.bin") == nil, "nothing is visible before complete")
        try await writer.finish()
        #expect(writer.parts.count == 3)
        let head = try #require(try await s3.headObject("big.bin"))
        #expect(head.size == Int64(total))
        let back = try await s3.getObject("big.bin", limit: total)
        #expect(back.withUnsafeReadableBytes { SHA256.hash(data: $0) } == data.withUnsafeReadableBytes { SHA256.hash(data: $0) })
        // A range across the first part boundary.
        let boundary = Int64(S3MultipartWriter.minimumPartSize)
        let across = try await s3.getObject("big.bin", range: (boundary - 10)...(boundary + 9))
        #expect(across == data.getSlice(at: Int(boundary) - 10, length: 20))
    }

    /// A large object through the multipart writer and back through a streamed GET, hashed on the fly on both
    /// sides (neither side holds the object). 64 MiB by default; FRAMEFLOW_S3_BIG_MIB=4096 for a multi-GB run.
    @Test func largeObjectRoundTripsThroughStreams() async throws {
        guard let s3 = try await client("big") else { return }
        let mib = Int(ProcessInfo.processInfo.environment["FRAMEFLOW_S3_BIG_MIB"] ?? "") ?? 64
        var block = [UInt8](Self.pattern(1 << 20, seed: 5).readableBytesView)
        var sent = SHA256()
        var writer = S3MultipartWriter(client: s3, key: "large.bin", partSize: 16 << 20, expectedSize: Int64(mib) << 20)
        let started = ContinuousClock.now
        for i in 0..<mib {
            // Each MiB differs (its index in the first bytes), so a part written twice or out of order shows.
            withUnsafeBytes(of: UInt64(i).littleEndian) { for (j, b) in $0.enumerated() { block[j] = b } }
            sent.update(data: block)
            try await writer.write(ByteBuffer(bytes: block))
        }
        try await writer.finish()
        let uploaded = ContinuousClock.now - started
        #expect(writer.parts.count == (mib + 15) / 16)
        let back = ContinuousClock.now
        let (received, total) = try await s3.streamObject("large.bin", range: 0...(Int64(mib) << 20) - 1, timeout: nil) { total, body in
            var hash = SHA256()
            var count = 0
            while let piece = try await body.next() {
                piece.withUnsafeReadableBytes { hash.update(bufferPointer: $0) }
                count += piece.readableBytes
            }
            return (hash.finalize(), (total, count))
        }
        let downloaded = ContinuousClock.now - back
        #expect(total.0 == Int64(mib) << 20)
        #expect(total.1 == mib << 20)
        #expect(received == sent.finalize())
        func rate(_ d: Duration) -> String {
            let seconds = Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
            return String(format: "%.1f s, %.0f MiB/s", seconds, Double(mib) / max(seconds, 0.001))
        }
        print("S3 round trip of \(mib) MiB: upload \(rate(uploaded)) in \(writer.parts.count) parts, download \(rate(downloaded))")
        try await s3.deleteObject("large.bin")
    }

    @Test func shortStreamIsOnePut() async throws {
        guard let s3 = try await client("small") else { return }
        var writer = S3MultipartWriter(client: s3, key: "small.bin")
        try await writer.write(ByteBuffer(string: "hello"))
        try await writer.finish()
        #expect(writer.uploadID == nil)
        #expect(String(buffer: try await s3.getObject("small.bin")) == "hello")
    }

    @Test func abortedMultipartUploadIsGone() async throws {
        guard let s3 = try await client("abort") else { return }
        var writer = S3MultipartWriter(client: s3, key: "never.bin", partSize: S3MultipartWriter.minimumPartSize)
        try await writer.write(Self.pattern(S3MultipartWriter.minimumPartSize, seed: 3))
        let uploadID = try #require(writer.uploadID)
        await writer.abort()
        // The store no longer knows the upload: completing it is refused, and no object appeared.
        await #expect(throws: S3Error.self) {
            try await s3.completeMultipartUpload("never.bin", uploadID: uploadID, parts: writer.parts)
        }
        #expect(try await s3.headObject("never.bin") == nil)
    }

    /// GETs `url` with no credentials at all, as a browser following a download link would.
    func anonymousGet(_ url: URL) async throws -> (Int, ByteBuffer) {
        let transport = try HTTPTransport(host: url.host!, port: url.port ?? 80, https: false)
        var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: url.path + "?" + (url.query ?? ""))
        head.headers.add(name: "host", value: "\(url.host!):\(url.port ?? 80)")
        head.headers.add(name: "connection", value: "close")
        return try await transport.execute(head: head, body: nil) { response, body in
            (Int(response.status.code), try await body.collect(upTo: 1 << 20))
        }
    }

    @Test func presignedGetWorksThenExpiredAndTamperedAreRefusedByTheStore() async throws {
        guard let s3 = try await client("presign") else { return }
        let body = Self.pattern(50_000, seed: 9)
        try await s3.putObject("job/frames.zip", body: body)

        let url = s3.presignedGetURL("job/frames.zip", expires: 900, downloadName: "frames.zip")
        let (status, bytes) = try await anonymousGet(url)
        #expect(status == 200)
        #expect(bytes == body)

        // Signed 20 minutes ago for 15 minutes: the store says it expired.
        let past = try S3Client(configuration: s3.configuration, now: { Date().addingTimeInterval(-1200) })
        let (expiredStatus, expiredBody) = try await anonymousGet(past.presignedGetURL("job/frames.zip", expires: 900))
        #expect(expiredStatus == 403, "\(String(buffer: expiredBody))")
        #expect(S3XML.firstValue(of: "Code", in: String(buffer: expiredBody)) == "AccessDenied")

        // One hex digit of the signature changed, or another key under the same signature: refused.
        var text = url.absoluteString
        let last = text.removeLast()
        let tampered = URL(string: text + (last == "0" ? "1" : "0"))!
        let (tamperedStatus, tamperedBody) = try await anonymousGet(tampered)
        #expect(tamperedStatus == 403)
        #expect(S3XML.firstValue(of: "Code", in: String(buffer: tamperedBody)) == "SignatureDoesNotMatch")
        try await s3.putObject("job/other.zip", body: ByteBuffer(string: "secret"))
        let otherKey = URL(string: url.absoluteString.replacingOccurrences(of: "frames.zip?", with: "other.zip?"))!
        let (otherStatus, _) = try await anonymousGet(otherKey)
        #expect(otherStatus == 403)
    }

    @Test func wrongSecretIsRejectedWithTheStoresCode() async throws {
        guard let good = S3LiveStore.configuration(bucket: S3LiveStore.uniqueBucket("auth")),
              let bad = S3LiveStore.configuration(bucket: good.bucket, secret: "not-the-secret")
        else { print("skipped: \(S3LiveStore.skipReason!)"); return }
        try await S3Client(configuration: good).createBucket()
        do {
            try await S3Client(configuration: bad).putObject("x", body: ByteBuffer(string: "x"))
            Issue.record("a wrong secret was accepted")
        } catch let error as S3Error {
            guard case .rejected(403, "SignatureDoesNotMatch", _) = error else {
                Issue.record("unexpected \(error)"); return
            }
            #expect(error.errorCode == .objectStoreRejected)
            #expect(!"\(error)".contains("not-the-secret"))
        }
    }

    /// A store that resets a connection now and then (seen on CI under parallel load: "I/O on
    /// closed channel" in the middle of a part copy): the request is sent again, up to
    /// ``S3Client/attempts`` times in all, and only then is the store unavailable.
    @Test func aDroppedConnectionIsRetriedAndOnlyTooManyFail() async throws {
        guard let direct = try await client("retry") else { return }
        let proxy = try TCPProxy(targetPort: direct.configuration.endpoint.port ?? 80)
        defer { proxy.stop() }
        var configuration = direct.configuration
        configuration.endpoint = URL(string: "http://127.0.0.1:\(proxy.port)")!
        let s3 = try S3Client(configuration: configuration)
        let body = Self.pattern(10_000, seed: 9)
        proxy.dropNext(S3Client.attempts - 1)
        try await s3.putObject("retried", body: body)
        #expect(try await direct.getObject("retried") == body, "stored on the last attempt")
        proxy.dropNext(S3Client.attempts)
        do {
            try await s3.putObject("refused", body: body)
            Issue.record("a put succeeded although every attempt was dropped")
        } catch let error as S3Error {
            guard case .unavailable = error else { Issue.record("unexpected \(error)"); return }
        }
        #expect(try await direct.headObject("refused") == nil)
    }

    @Test func unreachableStoreIsUnavailable() async throws {
        guard var configuration = S3LiveStore.configuration(bucket: "ff-down") else { print("skipped: \(S3LiveStore.skipReason!)"); return }
        configuration.endpoint = URL(string: "http://127.0.0.1:9")!  // discard: nothing listens
        do {
            try await S3Client(configuration: configuration).putObject("x", body: ByteBuffer(string: "x"))
            Issue.record("a put to nowhere succeeded")
        } catch let error as S3Error {
            guard case .unavailable = error else { Issue.record("unexpected \(error)"); return }
            #expect(error.errorCode == .objectStoreUnavailable)
        }
    }
}
