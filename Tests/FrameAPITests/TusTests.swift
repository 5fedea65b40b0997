@testable import FrameAPI
import Crypto
import FrameCore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

/// tus 1.0.0 on `/uploads`: the protocol's rules, the limits, the finish into a job, expiry,
/// termination and the per-user cap. The interop test with another client (tuspy) is in
/// IntegrationTests/TusInteropTests.
@Suite("Resumable uploads (tus)")
struct TusTests {
    static func pattern(_ count: Int, seed: Int = 0) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: ($0 &+ seed) &* 31 &+ $0 >> 8) }
    }

    static func metadata(_ pairs: [String: String]) -> String {
        pairs.sorted { $0.key < $1.key }.map { "\($0.key) \(Data($0.value.utf8).base64EncodedString())" }
            .joined(separator: ",")
    }

    static let tus: HTTPFields = [.tusResumable: "1.0.0"]

    func create(
        _ h: Harness, _ client: some TestClientProtocol, token: String, length: Int,
        metadata: [String: String] = ["filename": "clip.mp4"], extra: HTTPFields = [:], body: ByteBuffer? = nil
    ) async throws -> TestResponse {
        var headers = h.auth(token, Self.tus)
        headers[.uploadLength] = String(length)
        headers[.uploadMetadata] = Self.metadata(metadata)
        for field in extra { headers[field.name] = field.value }
        return try await client.execute(uri: "/uploads", method: .post, headers: headers, body: body)
    }

    func patch(
        _ h: Harness, _ client: some TestClientProtocol, token: String, path: String, offset: Int, _ bytes: [UInt8],
        extra: HTTPFields = [:]
    ) async throws -> TestResponse {
        var headers = h.auth(token, Self.tus)
        headers[.contentType] = Tus.chunkContentType
        headers[.uploadOffset] = String(offset)
        for field in extra { headers[field.name] = field.value }
        return try await client.execute(uri: path, method: .patch, headers: headers, body: ByteBuffer(bytes: bytes))
    }

    func head(_ h: Harness, _ client: some TestClientProtocol, token: String, path: String) async throws -> TestResponse {
        try await client.execute(uri: path, method: .head, headers: h.auth(token, Self.tus))
    }

    /// The path of a Location header (which is absolute).
    func path(_ response: TestResponse) throws -> String {
        let location = try #require(response.headers[.location])
        return try #require(URL(string: location)).path
    }

    func partialFile(_ h: Harness, _ path: String) -> URL {
        h.uploads.appendingPathComponent("partial").appendingPathComponent(URL(fileURLWithPath: path).lastPathComponent)
    }

    @Test func optionsAnswersTheCapabilitiesWithoutAToken() async throws {
        try await Harness.run(maxUploadBytes: 123_456) { _, client in
            let response = try await client.execute(uri: "/uploads", method: .options)
            #expect(response.status == .noContent)
            #expect(response.headers[.tusVersion] == "1.0.0")
            #expect(response.headers[.tusResumable] == "1.0.0")
            #expect(response.headers[.tusMaxSize] == "123456")
            #expect(response.headers[.tusChecksumAlgorithm] == "sha1")
            let extensions = Set((response.headers[.tusExtension] ?? "").split(separator: ",").map(String.init))
            #expect(extensions == ["creation", "creation-with-upload", "termination", "expiration", "checksum"])
        }
    }

    @Test func aRequestWithoutTheTusVersionIsRefusedWith412() async throws {
        try await Harness.run { h, client in
            let (token, _) = try await h.user(client)
            var headers = h.auth(token)
            headers[.uploadLength] = "10"
            let response = try await client.execute(uri: "/uploads", method: .post, headers: headers)
            #expect(response.status == .preconditionFailed)
            #expect(response.headers[.tusVersion] == "1.0.0")
            #expect(response.headers[.tusResumable] == "1.0.0")
            #expect(response.problemCode == "UNSUPPORTED_VERSION")
            // And tus requests are authenticated like the rest of the API.
            let anonymous = try await client.execute(uri: "/uploads", method: .post, headers: [.tusResumable: "1.0.0", .uploadLength: "10"])
            #expect(anonymous.status == .unauthorized)
            #expect(anonymous.headers[.tusResumable] == "1.0.0")
        }
    }

    /// Create, HEAD, three PATCHes (one with a correct sha1), and the last one's 204 names the
    /// committed video, whose options came from the metadata and whose file is the bytes sent.
    @Test(arguments: [TestingSetup.router, .live])
    func chunkedUploadBecomesAJob(_ setup: TestingSetup) async throws {
        try await Harness.run(setup) { h, client in
            let (token, _) = try await h.user(client)
            let bytes = Self.pattern(3 * 1024 * 1024 + 12_345)
            let created = try await create(
                h, client, token: token, length: bytes.count,
                metadata: ["filename": "Long Talk.MP4", "fps": "0.5", "format": "jpg", "quality": "4", "maxWidth": "320",
                           "filetype": "video/mp4"])
            #expect(created.status == .created)
            #expect(created.headers[.tusResumable] == "1.0.0")
            #expect(created.headers[.uploadExpires] != nil)
            let location = try #require(created.headers[.location])
            #expect(location.hasPrefix("http"), "Location must be absolute: \(location)")
            #expect(location == location.lowercased(), "ids are lower-case: \(location)")
            let path = try path(created)

            let fresh = try await head(h, client, token: token, path: path)
            #expect(fresh.status == .ok)
            #expect(fresh.headers[.uploadOffset] == "0")
            #expect(fresh.headers[.uploadLength] == String(bytes.count))
            #expect(fresh.headers[.cacheControl] == "no-store")

            let cuts = [0, 1_000_000, 2_500_000, bytes.count]
            for i in 0..<3 {
                let chunk = Array(bytes[cuts[i]..<cuts[i + 1]])
                var extra: HTTPFields = [:]
                if i == 1 {
                    extra[.uploadChecksum] = "sha1 " + Data(Insecure.SHA1.hash(data: chunk)).base64EncodedString()
                }
                let answer = try await patch(h, client, token: token, path: path, offset: cuts[i], chunk, extra: extra)
                #expect(answer.status == .noContent, "chunk \(i): \(String(buffer: answer.body))")
                #expect(answer.headers[.uploadOffset] == String(cuts[i + 1]))
                if i < 2 {
                    #expect(answer.headers[.frameflowVideoID] == nil)
                    #expect(try await head(h, client, token: token, path: path).headers[.uploadOffset] == String(cuts[i + 1]))
                }
            }
            let final = try await head(h, client, token: token, path: path)
            let id = try #require(final.headers[.frameflowVideoID])
            #expect(id == URL(fileURLWithPath: path).lastPathComponent)

            let video = try await client.execute(uri: "/videos/\(id)", method: .get, headers: h.auth(token)).decode(Video.self)
            #expect(video.originalFilename == "Long Talk.MP4")
            #expect(video.sizeBytes == Int64(bytes.count))
            #expect((video.fps, video.format, video.quality, video.maxWidth) == ("0.5", "jpg", 4, 320))
            let stored = h.uploads.appendingPathComponent(id).appendingPathComponent("input.mp4")
            #expect(try Data(contentsOf: stored) == Data(bytes))
            #expect(!FileManager.default.fileExists(atPath: partialFile(h, path).path), "the partial name is removed")

            let view = try await client.execute(uri: path, method: .get, headers: h.auth(token))
            #expect(view.status == .ok)
            let json = try #require(try JSONSerialization.jsonObject(with: Data(view.body.readableBytesView)) as? [String: Any])
            #expect(json["state"] as? String == "done")
            #expect(json["videoId"] as? String == id)
            #expect(json["offset"] as? Int == bytes.count)
        }
    }

    @Test func creationWithUploadFinishesInOneRequest() async throws {
        try await Harness.run { h, client in
            let (token, _) = try await h.user(client)
            let bytes = Self.pattern(70_000)
            let created = try await create(
                h, client, token: token, length: bytes.count, extra: [.contentType: Tus.chunkContentType],
                body: ByteBuffer(bytes: bytes))
            #expect(created.status == .created)
            #expect(created.headers[.uploadOffset] == String(bytes.count))
            let id = try #require(created.headers[.frameflowVideoID])
            let stored = h.uploads.appendingPathComponent(id).appendingPathComponent("input.mp4")
            #expect(try Data(contentsOf: stored) == Data(bytes))
            // Part of the file in the creation request, the rest by PATCH.
            let partial = try await create(
                h, client, token: token, length: bytes.count, extra: [.contentType: Tus.chunkContentType],
                body: ByteBuffer(bytes: Array(bytes[0..<30_000])))
            #expect(partial.headers[.uploadOffset] == "30000")
            #expect(partial.headers[.frameflowVideoID] == nil)
            let rest = try await patch(h, client, token: token, path: try path(partial), offset: 30_000, Array(bytes[30_000...]))
            #expect(rest.status == .noContent)
            #expect(rest.headers[.frameflowVideoID] != nil)
        }
    }

    @Test func limitsAreCheckedAtCreationAndOnEveryChunk() async throws {
        try await Harness.run(maxUploadBytes: 100_000) { h, client in
            let (token, _) = try await h.user(client)
            let tooLarge = try await create(h, client, token: token, length: 100_001)
            #expect(tooLarge.status == .contentTooLarge)
            #expect(tooLarge.problemCode == "UPLOAD_TOO_LARGE")
            #expect(tooLarge.headers[.tusResumable] == "1.0.0")
            let badExtension = try await create(h, client, token: token, length: 10, metadata: ["filename": "notes.txt"])
            #expect(badExtension.status == .unsupportedMediaType)
            #expect(badExtension.problemCode == "UNSUPPORTED_EXTENSION")
            // The same rule and words as a multipart upload (one check for both).
            let noExtension = try await create(h, client, token: token, length: 10, metadata: ["filename": "README"])
            #expect(noExtension.status == .unsupportedMediaType)
            #expect(String(buffer: noExtension.body).contains("'README' has no file extension"), "\(String(buffer: noExtension.body))")
            let noName = try await create(h, client, token: token, length: 10, metadata: [:])
            #expect(noName.status == .unprocessableContent)
            let badOption = try await create(h, client, token: token, length: 10, metadata: ["filename": "a.mp4", "fps": "0"])
            #expect(badOption.status == .unprocessableContent)
            #expect(badOption.problemCode == "VALIDATION_FAILED")
            var noLength = h.auth(token, Self.tus)
            noLength[.uploadMetadata] = Self.metadata(["filename": "a.mp4"])
            #expect(try await client.execute(uri: "/uploads", method: .post, headers: noLength).status == .badRequest)

            let created = try await create(h, client, token: token, length: 1000)
            let path = try path(created)
            // A chunk past Upload-Length is refused before it is read, and nothing moves.
            let over = try await patch(h, client, token: token, path: path, offset: 0, Self.pattern(1001))
            #expect(over.status == .contentTooLarge)
            #expect(over.problemCode == "UPLOAD_TOO_LARGE")
            #expect(try await head(h, client, token: token, path: path).headers[.uploadOffset] == "0")
        }
    }

    @Test func theUploadQuotaIsCheckedAtCreation() async throws {
        try await Harness.run(configure: { $0.quota = UploadQuota(maxStoredBytes: 1000) }) { h, client in
            let (token, _) = try await h.user(client)
            let over = try await create(h, client, token: token, length: 1001)
            #expect(over.status == .contentTooLarge)
            #expect(over.problemCode == "STORAGE_QUOTA_EXCEEDED")
            #expect(try await create(h, client, token: token, length: 1000).status == .created)
        }
        try await Harness.run(configure: { $0.quota = UploadQuota(maxActiveJobs: 0) }) { h, client in
            let (token, _) = try await h.user(client)
            let busy = try await create(h, client, token: token, length: 10)
            #expect(busy.status == .tooManyRequests)
            #expect(busy.problemCode == "JOB_QUOTA_EXCEEDED")
        }
    }

    @Test func offsetAndContentTypeAreEnforced() async throws {
        try await Harness.run { h, client in
            let (token, _) = try await h.user(client)
            let path = try path(try await create(h, client, token: token, length: 100))
            let ahead = try await patch(h, client, token: token, path: path, offset: 10, Self.pattern(10))
            #expect(ahead.status == .conflict)
            #expect(ahead.problemCode == "CONFLICT")
            var headers = h.auth(token, Self.tus)
            headers[.contentType] = "application/octet-stream"
            headers[.uploadOffset] = "0"
            let wrongType = try await client.execute(uri: path, method: .patch, headers: headers, body: ByteBuffer(bytes: [1]))
            #expect(wrongType.status == .unsupportedMediaType)
            #expect(try await head(h, client, token: token, path: path).headers[.uploadOffset] == "0")
            // Someone else's upload does not exist for them.
            let (other, _) = try await h.user(client)
            #expect(try await head(h, client, token: other, path: path).status == .notFound)
            #expect(try await patch(h, client, token: other, path: path, offset: 0, [1]).status == .notFound)
        }
    }

    @Test func aChunkThatFailsItsChecksumIsDiscarded() async throws {
        try await Harness.run { h, client in
            let (token, _) = try await h.user(client)
            let bytes = Self.pattern(50_000)
            let path = try path(try await create(h, client, token: token, length: bytes.count))
            let wrong = "sha1 " + Data(Insecure.SHA1.hash(data: Self.pattern(50_000, seed: 1))).base64EncodedString()
            let mismatch = try await patch(h, client, token: token, path: path, offset: 0, bytes, extra: [.uploadChecksum: wrong])
            #expect(mismatch.status.code == 460)
            #expect(mismatch.problemCode == "CHECKSUM_MISMATCH")
            #expect(try await head(h, client, token: token, path: path).headers[.uploadOffset] == "0")
            let unsupported = try await patch(h, client, token: token, path: path, offset: 0, bytes,
                                              extra: [.uploadChecksum: "md5 " + Data(repeating: 0, count: 16).base64EncodedString()])
            #expect(unsupported.status == .badRequest)
            let right = "sha1 " + Data(Insecure.SHA1.hash(data: bytes)).base64EncodedString()
            let accepted = try await patch(h, client, token: token, path: path, offset: 0, bytes, extra: [.uploadChecksum: right])
            #expect(accepted.status == .noContent)
            #expect(accepted.headers[.frameflowVideoID] != nil)
        }
    }

    @Test func terminationDeletesTheBytes() async throws {
        try await Harness.run { h, client in
            let (token, _) = try await h.user(client)
            let path = try path(try await create(h, client, token: token, length: 1000))
            #expect(try await patch(h, client, token: token, path: path, offset: 0, Self.pattern(400)).status == .noContent)
            #expect(FileManager.default.fileExists(atPath: partialFile(h, path).path))
            let deleted = try await client.execute(uri: path, method: .delete, headers: h.auth(token, Self.tus))
            #expect(deleted.status == .noContent)
            #expect(deleted.headers[.tusResumable] == "1.0.0")
            #expect(!FileManager.default.fileExists(atPath: partialFile(h, path).path))
            let gone = try await head(h, client, token: token, path: path)
            #expect(gone.status == .gone)
            #expect(gone.headers[.frameflowErrorCode] == "UPLOAD_EXPIRED")
            #expect(try await patch(h, client, token: token, path: path, offset: 400, [1]).status == .gone)
        }
    }

    /// Moves an upload's expiry into the past (as if its time had run out), so the test does not
    /// depend on how fast requests are answered on a loaded machine.
    func age(_ h: Harness, _ path: String) async throws {
        let id = try #require(UUID(uuidString: URL(fileURLWithPath: path).lastPathComponent))
        try await h.db.withConnection { conn in
            try conn.query("UPDATE tus_uploads SET expires_at = now() - interval '1 second' WHERE id = $1::uuid", id)
        }
    }

    /// An unfinished upload past its expiry loses its bytes: through the sweep, or on the spot when
    /// a request names it first. A finished one stays a job.
    @Test func unfinishedUploadsExpire() async throws {
        try await Harness.run { h, client in
            let (token, _) = try await h.user(client)
            let swept = try path(try await create(h, client, token: token, length: 1000))
            let finished = try path(try await create(h, client, token: token, length: 10))
            #expect(try await patch(h, client, token: token, path: swept, offset: 0, Self.pattern(300)).status == .noContent)
            #expect(try await patch(h, client, token: token, path: finished, offset: 0, Self.pattern(10)).status == .noContent)
            #expect(try await h.api.sweepExpiredUploads() == 0, "nothing is due yet")
            for path in [swept, finished] { try await age(h, path) }

            #expect(try await h.api.sweepExpiredUploads() == 1)
            #expect(!FileManager.default.fileExists(atPath: partialFile(h, swept).path))
            let gone = try await head(h, client, token: token, path: swept)
            #expect(gone.status == .gone)
            #expect(gone.headers[.frameflowErrorCode] == "UPLOAD_EXPIRED")
            // The finished one is a job and stays one.
            let done = try await head(h, client, token: token, path: finished)
            #expect(done.status == .ok)
            #expect(done.headers[.frameflowVideoID] != nil)
        }
        // Expired on the spot, before any sweep.
        try await Harness.run { h, client in
            let (token, _) = try await h.user(client)
            let late = try path(try await create(h, client, token: token, length: 1000))
            #expect(try await patch(h, client, token: token, path: late, offset: 0, Self.pattern(300)).status == .noContent)
            try await age(h, late)
            let answer = try await patch(h, client, token: token, path: late, offset: 300, Self.pattern(10))
            #expect(answer.status == .gone)
            #expect(answer.problemCode == "UPLOAD_EXPIRED")
            #expect(!FileManager.default.fileExists(atPath: partialFile(h, late).path))
        }
    }

    /// The expiry is configurable (default 24 h) and counts from the last chunk: here a short one
    /// runs out in real time. Only the creation comes before the wait, so a slow machine cannot
    /// make a later request arrive after the expiry.
    @Test func theConfiguredExpiryRunsOut() async throws {
        try await Harness.run { h, client in
            let (token, _) = try await h.user(client)
            let created = try await create(h, client, token: token, length: 10)
            let expires = try #require(created.headers[.uploadExpires])
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.timeZone = TimeZone(identifier: "GMT")
            formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
            let date = try #require(formatter.date(from: expires))
            #expect(abs(date.timeIntervalSinceNow - 24 * 3600) < 120, "default 24 h: \(expires)")
        }
        try await Harness.run(configure: { $0.tusExpiry = .seconds(2) }) { h, client in
            let (token, _) = try await h.user(client)
            let path = try path(try await create(h, client, token: token, length: 10))
            try await Task.sleep(for: .milliseconds(2500))
            #expect(try await h.api.sweepExpiredUploads() == 1)
            #expect(try await head(h, client, token: token, path: path).status == .gone)
        }
    }

    @Test func unfinishedUploadsPerUserAreCapped() async throws {
        try await Harness.run(configure: { $0.maxUnfinishedUploads = 2 }) { h, client in
            let (token, _) = try await h.user(client)
            let first = try path(try await create(h, client, token: token, length: 10))
            let second = try path(try await create(h, client, token: token, length: 10))
            let third = try await create(h, client, token: token, length: 10)
            #expect(third.status == .tooManyRequests)
            #expect(third.problemCode == "TOO_MANY_UPLOADS")
            // Another user has a cap of their own.
            let (other, _) = try await h.user(client)
            #expect(try await create(h, client, token: other, length: 10).status == .created)
            // Finishing one and deleting the other frees the places.
            #expect(try await patch(h, client, token: token, path: first, offset: 0, Self.pattern(10)).status == .noContent)
            #expect(try await create(h, client, token: token, length: 10).status == .created)
            _ = try await client.execute(uri: second, method: .delete, headers: h.auth(token, Self.tus))
            #expect(try await create(h, client, token: token, length: 10).status == .created)
        }
    }

    @Test func aNonVideoGetsTheSame422AsAMultipartUpload() async throws {
        try await Harness.run(ingest: .notMedia) { h, client in
            let (token, _) = try await h.user(client)
            let multipart = try await h.upload(client, token: token, files: [("text.mp4", Self.pattern(100))])
            let path = try path(try await create(h, client, token: token, length: 100))
            let answer = try await patch(h, client, token: token, path: path, offset: 0, Self.pattern(100))
            #expect(answer.status == multipart.status)
            #expect(answer.status == .unprocessableContent)
            #expect(answer.problemCode == multipart.problemCode)
            #expect(answer.problemCode == "NOT_MEDIA")
            // A client that resumes learns the same refusal, and no byte is left behind.
            let resumed = try await head(h, client, token: token, path: path)
            #expect(resumed.status == .unprocessableContent)
            #expect(resumed.headers[.frameflowErrorCode] == "NOT_MEDIA")
            #expect(h.uploadedFiles().allSatisfy { $0.hasSuffix("/partial") }, "\(h.uploadedFiles())")
        }
    }

    /// The bytes were durable but committing the job failed (the database was away): the upload
    /// stays complete, and the client's next HEAD finishes it.
    @Test func aFinishInterruptedAfterTheBytesLandedIsCompletedByTheNextHead() async throws {
        try await Harness.run(ingest: .flakyOnce) { h, client in
            let (token, _) = try await h.user(client)
            let bytes = Self.pattern(5000)
            let path = try path(try await create(h, client, token: token, length: bytes.count))
            let failed = try await patch(h, client, token: token, path: path, offset: 0, bytes)
            #expect(failed.status == .serviceUnavailable)
            #expect(FileManager.default.fileExists(atPath: partialFile(h, path).path))
            let resumed = try await head(h, client, token: token, path: path)
            #expect(resumed.status == .ok)
            #expect(resumed.headers[.uploadOffset] == String(bytes.count))
            let id = try #require(resumed.headers[.frameflowVideoID])
            let stored = h.uploads.appendingPathComponent(id).appendingPathComponent("input.mp4")
            #expect(try Data(contentsOf: stored) == Data(bytes))
            // The client that retries its last chunk (its 204 was lost) is told where things stand.
            let retry = try await patch(h, client, token: token, path: path, offset: bytes.count, [])
            #expect(retry.status == .noContent)
            #expect(retry.headers[.frameflowVideoID] == id)
        }
    }

    /// A client that goes away mid-chunk keeps what it sent: the next HEAD reports those bytes and
    /// the upload resumes from there.
    @Test func aClientCutOffMidChunkResumesFromWhatArrived() async throws {
        try await Harness.run(.live) { h, client in
            let (token, _) = try await h.user(client)
            let bytes = Self.pattern(600_000)
            let path = try path(try await create(h, client, token: token, length: bytes.count))
            let connection = try await RawHTTPConnection.connect(port: try #require(client.port))
            try await connection.send("""
                PATCH \(path) HTTP/1.1\r
                Host: localhost\r
                Authorization: Bearer \(token)\r
                Tus-Resumable: 1.0.0\r
                Content-Type: application/offset+octet-stream\r
                Upload-Offset: 0\r
                Content-Length: \(bytes.count)\r
                \r

                """)
            try await connection.send(ByteBuffer(bytes: bytes[0..<250_000]))
            try await Task.sleep(for: .milliseconds(300))
            await connection.close()
            var offset = "0"
            try await eventuallyTrue(5) {
                offset = try await head(h, client, token: token, path: path).headers[.uploadOffset] ?? "?"
                return offset == "250000"
            }
            #expect(offset == "250000")
            let rest = try await patch(h, client, token: token, path: path, offset: 250_000, Array(bytes[250_000...]))
            #expect(rest.status == .noContent)
            let id = try #require(rest.headers[.frameflowVideoID])
            #expect(try Data(contentsOf: h.uploads.appendingPathComponent(id).appendingPathComponent("input.mp4")) == Data(bytes))
        }
    }

    @Test func metadataParsing() throws {
        let parsed = try Tus.metadata("filename \(Data("a b,c.mp4".utf8).base64EncodedString()),is_confidential, fps MQ==")
        #expect(parsed == ["filename": "a b,c.mp4", "is_confidential": "", "fps": "1"])
        #expect(throws: APIError.self) { try Tus.metadata("filename !!!") }
        #expect(throws: APIError.self) { try Tus.metadata("a MQ==,a MQ==") }
        #expect(Tus.httpDate(Date(timeIntervalSince1970: 1_403_712_000)) == "Wed, 25 Jun 2014 16:00:00 GMT")
    }
}

/// Polls `condition` every 50 ms for up to `seconds`.
func eventuallyTrue(_ seconds: Double, _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(50))
    }
}
