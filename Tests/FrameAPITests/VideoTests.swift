@testable import FrameAPI
import FrameCore
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

@Suite("Video views, cancel and download")
struct VideoTests {
    @Test func listPagesFiltersAndShowsOnlyTheCallersVideos() async throws {
        try await Harness.run { h, client in
            let (alice, _) = try await h.user(client)
            let (bob, _) = try await h.user(client)
            var ids: [UUID] = []
            for i in 0..<5 { ids.append(try await h.video(client, token: alice, name: "a\(i).mp4").id) }
            _ = try await h.video(client, token: bob)
            try await h.setStatus(ids[1], .cancelled)

            let first = try await client.execute(uri: "/videos?size=2", method: .get, headers: h.auth(alice)).decode(Page.self)
            #expect(first.totalElements == 5)
            #expect((first.page, first.size) == (0, 2))
            #expect(first.items.map(\.id) == [ids[4], ids[3]])  // newest first
            let last = try await client.execute(uri: "/videos?size=2&page=2", method: .get, headers: h.auth(alice)).decode(Page.self)
            #expect(last.items.map(\.id) == [ids[0]])
            let defaults = try await client.execute(uri: "/videos", method: .get, headers: h.auth(alice)).decode(Page.self)
            #expect(defaults.size == 20)
            #expect(defaults.items.count == 5)

            let cancelled = try await client.execute(uri: "/videos?status=CANCELLED", method: .get, headers: h.auth(alice))
                .decode(Page.self)
            #expect(cancelled.items.map(\.id) == [ids[1]])
            #expect(cancelled.totalElements == 1)
            let queued = try await client.execute(uri: "/videos?status=queued", method: .get, headers: h.auth(alice))
                .decode(Page.self)
            #expect(queued.totalElements == 4)

            for query in ["status=DONE", "page=-1", "size=0", "size=101", "page=x"] {
                let bad = try await client.execute(uri: "/videos?\(query)", method: .get, headers: h.auth(alice))
                #expect(bad.status == .unprocessableContent, "\(query)")
                #expect(bad.problemCode == "VALIDATION_FAILED")
            }
        }
    }

    @Test func showHasTheDocumentedFields() async throws {
        try await Harness.run { h, client in
            let (token, _) = try await h.user(client)
            let video = try await h.video(client, token: token)
            let response = try await client.execute(uri: "/videos/\(video.id)", method: .get, headers: h.auth(token))
            let object = try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as! [String: Any]
            for key in ["id", "originalFilename", "status", "progress", "frameCount", "sizeBytes", "durationSeconds", "fps",
                        "format", "createdAt", "updatedAt"] {
                #expect(object[key] != nil, "\(key)")
            }
            #expect(object["progress"] as? Double == 0)
            #expect(object["frameCount"] as? Int == 10)
            #expect(object["status"] as? String == "QUEUED")
        }
    }

    @Test func cancelThenConflict() async throws {
        try await Harness.run { h, client in
            let (token, _) = try await h.user(client)
            let video = try await h.video(client, token: token)
            let cancelled = try await client.execute(uri: "/videos/\(video.id)", method: .delete, headers: h.auth(token))
            #expect(cancelled.status == .ok)
            #expect(try cancelled.decode(Video.self).status == "CANCELLED")
            let again = try await client.execute(uri: "/videos/\(video.id)", method: .delete, headers: h.auth(token))
            #expect(again.status == .conflict)
            #expect(again.problemCode == "INVALID_JOB_STATE")

            let processing = try await h.video(client, token: token)
            try await h.setStatus(processing.id, .processing)
            let ok = try await client.execute(uri: "/videos/\(processing.id)", method: .delete, headers: h.auth(token))
            #expect(ok.status == .ok)
        }
    }

    @Test func downloadServesTheArchiveWithRanges() async throws {
        try await Harness.run { h, client in
            let (token, _) = try await h.user(client)
            let video = try await h.video(client, token: token, name: "My Trip.mp4")
            let archive = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
            try await h.complete(video.id, bytes: archive)
            let uri = "/videos/\(video.id)/download"

            let whole = try await client.execute(uri: uri, method: .get, headers: h.auth(token))
            #expect(whole.status == .ok)
            #expect(whole.headers[.contentType] == "application/zip")
            #expect(whole.headers[.acceptRanges] == "bytes")
            #expect(whole.headers[.contentDisposition] == #"attachment; filename="My Trip-frames.zip""#)
            #expect(Array(whole.body.readableBytesView) == archive)

            let cases: [(String, ClosedRange<Int>)] = [
                ("bytes=0-99", 0...99), ("bytes=299990-", 299_990...299_999), ("bytes=-10", 299_990...299_999),
                ("bytes=100-999999", 100...299_999),
            ]
            for (range, expected) in cases {
                let partial = try await client.execute(uri: uri, method: .get, headers: h.auth(token, [.range: range]))
                #expect(partial.status == .partialContent, "\(range)")
                #expect(partial.headers[.contentRange] == "bytes \(expected.lowerBound)-\(expected.upperBound)/300000")
                #expect(Array(partial.body.readableBytesView) == Array(archive[expected]))
            }
            let unsatisfiable = try await client.execute(uri: uri, method: .get, headers: h.auth(token, [.range: "bytes=300000-"]))
            #expect(unsatisfiable.status == .rangeNotSatisfiable)
            #expect(unsatisfiable.headers[.contentRange] == "bytes */300000")

            // The signed link honours ranges the same way.
            let link = try await client.execute(uri: "\(uri)-url", method: .get, headers: h.auth(token)).decode(Link.self)
            let linked = try await client.execute(uri: link.url, method: .get, headers: [.range: "bytes=10-19"])
            #expect(linked.status == .partialContent)
            #expect(Array(linked.body.readableBytesView) == Array(archive[10...19]))
            let linkedBad = try await client.execute(uri: link.url, method: .get, headers: [.range: "bytes=400000-500000"])
            #expect(linkedBad.status == .rangeNotSatisfiable)
        }
    }

    @Test func rateText() {
        #expect(VideoResponse.rateText(Rational(1, 1)) == "1")
        #expect(VideoResponse.rateText(Rational(5, 2)) == "2.5")
        #expect(VideoResponse.rateText(Rational(1, 10)) == "0.1")
        #expect(VideoResponse.rateText(Rational(1, 3)) == "1/3")
        #expect(VideoResponse.rateText(Rational(30000, 1001)) == "30000/1001")
        #expect(VideoResponse.rateText(Rational(1, 8)) == "0.125")
    }

    @Test func byteRanges() {
        #expect(ByteRange.resolve(nil, size: 10) == .whole)
        #expect(ByteRange.resolve("bytes=0-0", size: 10) == .partial(0...0))
        #expect(ByteRange.resolve("bytes=5-2", size: 10) == .whole)
        #expect(ByteRange.resolve("bytes=0-1,4-5", size: 10) == .whole)
        #expect(ByteRange.resolve("bytes=10-", size: 10) == .unsatisfiable)
        #expect(ByteRange.resolve("bytes=-0", size: 10) == .unsatisfiable)
        #expect(ByteRange.resolve("bytes=-20", size: 10) == .partial(0...9))
        #expect(ByteRange.resolve("items=0-1", size: 10) == .whole)
    }
}
