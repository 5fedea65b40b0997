@testable import FrameAPI
import FrameCore
import FrameStore
import Foundation
import HummingbirdTesting
import NIOCore
import Testing

/// Limits on what one request and one user may upload: 413 / 429 with their own codes,
/// nothing left on disk.
@Suite("Upload limits and quotas")
struct UploadLimitTests {
    /// Several files, each under the per-file limit, cannot together pass the per-request one.
    @Test(arguments: [TestingSetup.router, .live])
    func severalFilesTogetherHitTheRequestLimit(_ setup: TestingSetup) async throws {
        try await Harness.run(setup, maxUploadBytes: 100_000, configure: { $0.maxRequestBytes = 250_000 }) { h, client in
            let (token, _) = try await h.user(client)
            let files = (0..<4).map { ("part\($0).mp4", UploadTests.pattern(90_000)) }
            let response = try await h.upload(client, token: token, files: files)
            #expect(response.status == .contentTooLarge)
            #expect(response.problemCode == "REQUEST_TOO_LARGE")
            #expect(h.uploadedFiles().isEmpty)
            let page = try await client.execute(uri: "/videos", method: .get, headers: h.auth(token)).decode(Page.self)
            #expect(page.totalElements == 0)
            // Two of them fit.
            let fits = try await h.upload(client, token: token, files: Array(files.prefix(2)))
            #expect(fits.status == .created)
        }
    }

    /// The same limit read from Content-Length: refused before the body is sent (no 100 Continue).
    @Test func aDeclaredLengthOverTheLimitIsRefusedBeforeTheBody() async throws {
        try await Harness.run(.live, maxUploadBytes: 100_000) { h, client in
            let (token, _) = try await h.user(client)
            let connection = try await RawHTTPConnection.connect(port: try #require(client.port))
            defer { Task { await connection.close() } }
            try await connection.send(
                "POST /videos HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer \(token)\r\n"
                    + "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 5000000000\r\n"
                    + "Expect: 100-continue\r\n\r\n")
            let head = try #require(try await connection.readHead())
            #expect(head.hasPrefix("HTTP/1.1 413"), "\(head)")
            #expect(head.lowercased().contains("content-type: application/problem+json"))
            #expect(h.uploadedFiles().isEmpty)
        }
    }

    @Test func tooManyFilePartsAreRefused() async throws {
        try await Harness.run(configure: { $0.maxFilesPerRequest = 2 }) { h, client in
            let (token, _) = try await h.user(client)
            let files = (0..<3).map { ("f\($0).mp4", [UInt8](repeating: 1, count: 100)) }
            let response = try await h.upload(client, token: token, files: files)
            #expect(response.status == .contentTooLarge)
            #expect(response.problemCode == "TOO_MANY_FILES")
            #expect(h.uploadedFiles().isEmpty)
            #expect(try await h.upload(client, token: token, files: Array(files.prefix(2))).status == .created)
        }
    }

    @Test func storedBytesQuota() async throws {
        try await Harness.run(configure: { $0.quota = UploadQuota(maxStoredBytes: 2500) }) { h, client in
            let (token, id) = try await h.user(client)
            for _ in 0..<2 { _ = try await h.video(client, token: token) }  // 1000 bytes each
            let third = try await h.upload(client, token: token, files: [("c.mp4", [UInt8](repeating: 7, count: 1000))])
            #expect(third.status == .contentTooLarge)
            #expect(third.problemCode == "STORAGE_QUOTA_EXCEEDED")
            #expect(h.uploadedFiles().count == 4, "the two accepted uploads (file and folder each), nothing of the third")
            // A smaller one still fits; another user has a quota of their own.
            let small = try await h.upload(client, token: token, files: [("d.mp4", [UInt8](repeating: 7, count: 400))])
            #expect(small.status == .created)
            let (other, _) = try await h.user(client)
            _ = try await h.video(client, token: other)
            #expect(try await h.api.jobs.usage(userID: id).storedBytes == 2400)
            #expect(h.api.uploads.inFlight(id) == UserUsage(storedBytes: 0, activeJobs: 0), "reservations released")
        }
    }

    @Test func activeJobsQuota() async throws {
        try await Harness.run(configure: { $0.quota = UploadQuota(maxActiveJobs: 2) }) { h, client in
            let (token, _) = try await h.user(client)
            let first = try await h.video(client, token: token)
            _ = try await h.video(client, token: token)
            let third = try await h.upload(client, token: token, files: [("c.mp4", [1, 2, 3])])
            #expect(third.status == .tooManyRequests)
            #expect(third.problemCode == "JOB_QUOTA_EXCEEDED")
            #expect(h.uploadedFiles().count == 4)
            // Two files in one request count as two jobs.
            try await h.setStatus(first.id, .completed)
            let two = try await h.upload(client, token: token, files: [("d.mp4", [1]), ("e.mp4", [2])])
            #expect(two.problemCode == "JOB_QUOTA_EXCEEDED")
            // Once one has finished there is room for one more.
            #expect(try await h.upload(client, token: token, files: [("d.mp4", [1])]).status == .created)
        }
    }
}
