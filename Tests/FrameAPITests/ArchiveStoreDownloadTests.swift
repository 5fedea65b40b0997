import FrameAPI
import FrameCore
import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

/// Downloads through the ``ArchiveStore`` seam: a store that hands out links answers with a
/// redirect, a store that streams is served with the same ranges as the disk, and a store that is
/// down answers 503 with its code rather than a broken body.
@Suite struct ArchiveStoreDownloadTests {
    /// Archives kept in memory, answered the way the object store's two modes answer.
    struct MemoryArchives: ArchiveStore {
        enum Mode: Sendable { case redirect, stream, down }
        let mode: Mode
        let bytes: [UInt8]

        func publish(job: UUID, file: URL) async throws {}
        func released(job: UUID) async {}
        func delete(job: UUID) async throws {}
        func locate(job: UUID, downloadName: String) async throws -> ArchiveLocation {
            switch mode {
            case .redirect:
                var c = URLComponents(string: "http://store.example:9000/bucket/archives/\(job.uuidString.lowercased()).zip")!
                c.queryItems = [URLQueryItem(name: "name", value: downloadName), URLQueryItem(name: "X-Amz-Signature", value: "abc")]
                return .redirect(c.url!)
            case .stream:
                let bytes = self.bytes
                return .stream(size: bytes.count) { range, sink in
                    // In pieces, as ranged GETs arrive.
                    var at = range.lowerBound
                    while at <= range.upperBound {
                        let end = min(at + 4095, range.upperBound)
                        try await sink(ByteBuffer(bytes: bytes[at...end]))
                        at = end + 1
                    }
                }
            case .down:
                throw FrameFlowError(.objectStoreUnavailable, "object store unavailable: connection refused")
            }
        }
    }

    static let archive = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 13) }

    @Test func presignedStoreRedirectsTheDownload() async throws {
        try await Harness.run(archives: MemoryArchives(mode: .redirect, bytes: [])) { h, client in
            let (token, _) = try await h.user(client)
            let video = try await h.video(client, token: token, name: "Trip.mp4")
            try await h.setStatus(video.id, .completed)
            let response = try await client.execute(uri: "/videos/\(video.id)/download", method: .get, headers: h.auth(token))
            #expect(response.status == .found)
            let location = try #require(response.headers[.location])
            #expect(location.hasPrefix("http://store.example:9000/bucket/archives/\(video.id.uuidString.lowercased()).zip?"))
            #expect(location.contains("name=Trip-frames.zip"))
            #expect(response.headers[.cacheControl] == "no-store")
            // Still only once COMPLETED: a queued video gets no link to the store.
            let other = try await h.video(client, token: token)
            let early = try await client.execute(uri: "/videos/\(other.id)/download", method: .get, headers: h.auth(token))
            #expect(early.status == .conflict)
        }
    }

    @Test func streamingStoreServesWholeAndRanges() async throws {
        try await Harness.run(archives: MemoryArchives(mode: .stream, bytes: Self.archive)) { h, client in
            let (token, _) = try await h.user(client)
            let video = try await h.video(client, token: token)
            try await h.setStatus(video.id, .completed)
            let uri = "/videos/\(video.id)/download"
            let whole = try await client.execute(uri: uri, method: .get, headers: h.auth(token))
            #expect(whole.status == .ok)
            #expect(whole.headers[.contentLength] == "100000")
            #expect(Array(whole.body.readableBytesView) == Self.archive)
            let partial = try await client.execute(uri: uri, method: .get, headers: h.auth(token, [.range: "bytes=5000-14999"]))
            #expect(partial.status == .partialContent)
            #expect(partial.headers[.contentRange] == "bytes 5000-14999/100000")
            #expect(Array(partial.body.readableBytesView) == Array(Self.archive[5000...14999]))
            let bad = try await client.execute(uri: uri, method: .get, headers: h.auth(token, [.range: "bytes=100000-"]))
            #expect(bad.status == .rangeNotSatisfiable)
        }
    }

    @Test func storeThatIsDownAnswers503WithItsCode() async throws {
        try await Harness.run(archives: MemoryArchives(mode: .down, bytes: [])) { h, client in
            let (token, _) = try await h.user(client)
            let video = try await h.video(client, token: token)
            try await h.setStatus(video.id, .completed)
            let response = try await client.execute(uri: "/videos/\(video.id)/download", method: .get, headers: h.auth(token))
            #expect(response.status == .serviceUnavailable)
            #expect(String(buffer: response.body).contains("OBJECT_STORE_UNAVAILABLE"))
        }
    }
}
