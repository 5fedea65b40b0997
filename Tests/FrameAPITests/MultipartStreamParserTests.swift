@testable import FrameAPI
import NIOCore
import Testing

@Suite("MultipartStreamParser")
struct MultipartStreamParserTests {
    /// A part as the parser reports it, with its body pieces joined.
    struct Part: Equatable {
        var headers: [String: String]
        var body: [UInt8]
    }

    /// Feeds `body` in the given pieces and joins the events into parts.
    static func parse(_ body: [UInt8], boundary: String = "XyZ", splits: [Int] = []) throws -> [Part] {
        var parser = MultipartStreamParser(boundary: boundary)
        var events: [MultipartStreamParser.Event] = []
        var start = 0
        for cut in splits.sorted() + [body.count] where cut >= start {
            events += try parser.feed(ByteBuffer(bytes: body[start..<cut]))
            start = cut
        }
        try parser.finish()
        var parts: [Part] = []
        var open = false
        for event in events {
            switch event {
            case .partBegin(let headers):
                #expect(!open, "a part began before the previous one ended")
                parts.append(Part(headers: headers, body: []))
                open = true
            case .body(let bytes):
                #expect(open, "body bytes outside a part")
                parts[parts.count - 1].body += Array(buffer: bytes)
            case .partEnd:
                #expect(open)
                open = false
            }
        }
        #expect(!open, "the last part never ended")
        return parts
    }

    static func body(_ parts: [(headers: String, body: [UInt8])], boundary: String = "XyZ",
                     preamble: String = "", epilogue: String = "") -> [UInt8] {
        var out = Array(preamble.utf8)
        for part in parts {
            out += Array("--\(boundary)\r\n\(part.headers)\r\n".utf8) + part.body + Array("\r\n".utf8)
        }
        out += Array("--\(boundary)--\(epilogue)".utf8)
        return out
    }

    static let fileHeaders = "Content-Disposition: form-data; name=\"file\"; filename=\"a.mp4\"\r\nContent-Type: video/mp4\r\n"

    @Test func fieldsAndFilesInOrder() throws {
        let video: [UInt8] = (0..<5000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        let body = Self.body([
            ("Content-Disposition: form-data; name=\"fps\"\r\n", Array("0.5".utf8)),
            (Self.fileHeaders, video),
        ])
        let parts = try Self.parse(body)
        #expect(parts == [
            Part(headers: ["content-disposition": "form-data; name=\"fps\""], body: Array("0.5".utf8)),
            Part(headers: ["content-disposition": "form-data; name=\"file\"; filename=\"a.mp4\"", "content-type": "video/mp4"],
                 body: video),
        ])
    }

    /// Every way of cutting the body in two, and one byte at a time, gives the same parts:
    /// delimiters, CRLFs and header ends split across chunks are the hard cases.
    @Test func anyChunkingGivesTheSameParts() throws {
        let tricky = Array("a\r\n-\r\n--X\r\n--Xy\r\r\n--XyQz\r\nend".utf8)
        let body = Self.body([
            ("Content-Disposition: form-data; name=\"format\"\r\n", Array("jpg".utf8)),
            (Self.fileHeaders, tricky),
            ("Content-Disposition: form-data; name=\"note\"\r\n", []),
        ], preamble: "ignored preamble\r\n", epilogue: "\r\nignored epilogue")
        let expected = try Self.parse(body)
        #expect(expected.count == 3)
        #expect(expected[1].body == tricky)
        #expect(expected[2].body == [])
        for cut in 0...body.count {
            #expect(try Self.parse(body, splits: [cut]) == expected, "split at \(cut)")
        }
        #expect(try Self.parse(body, splits: Array(0...body.count)) == expected)
    }

    /// Body bytes that begin like the delimiter but are not it stay in the body.
    @Test func nearDelimitersAreData() throws {
        let payload = Array("\r\n--XyY and \r\n--Xy and \r\n-- and \r\r\n--Xy\r".utf8)
        let parts = try Self.parse(Self.body([(Self.fileHeaders, payload)]))
        #expect(parts.map(\.body) == [payload])
    }

    @Test func partWithoutHeaders() throws {
        let body = Array("--XyZ\r\n\r\nhello\r\n--XyZ--".utf8)
        #expect(try Self.parse(body) == [Part(headers: [:], body: Array("hello".utf8))])
    }

    @Test func missingClosingDelimiterIsTruncated() {
        let body = Array("--XyZ\r\n\(Self.fileHeaders)\r\nhalf a vid".utf8)
        #expect(throws: MultipartStreamParser.ParseError.truncated) { try Self.parse(body) }
    }

    @Test func headerBlockWithoutEndIsRefusedOnceTooLarge() {
        var parser = MultipartStreamParser(boundary: "XyZ")
        let start = ByteBuffer(string: "--XyZ\r\nContent-Disposition: form-data; name=\"file\"")
        #expect(throws: Never.self) { _ = try parser.feed(start) }
        let filler = ByteBuffer(string: String(repeating: "x", count: MultipartStreamParser.maxHeaderBytes))
        #expect(throws: MultipartStreamParser.ParseError.headerTooLarge) { _ = try parser.feed(filler) }
    }

    @Test func headerLineWithoutColonIsMalformed() {
        let body = Array("--XyZ\r\nnot a header\r\n\r\nx\r\n--XyZ--".utf8)
        #expect(throws: MultipartStreamParser.ParseError.malformedHeader) { try Self.parse(body) }
    }

    @Test func garbageAfterDelimiterIsMalformed() {
        let body = Array("--XyZ!!\r\n\r\nx\r\n--XyZ--".utf8)
        #expect(throws: MultipartStreamParser.ParseError.malformedDelimiter) { try Self.parse(body) }
    }

    /// Large bodies leave as slices of the chunks they came in, not byte-sized pieces.
    @Test func bodyBytesLeaveInChunkSizedPieces() throws {
        var parser = MultipartStreamParser(boundary: "XyZ")
        _ = try parser.feed(ByteBuffer(string: "--XyZ\r\n\(Self.fileHeaders)\r\n"))
        let chunk = ByteBuffer(bytes: [UInt8](repeating: 13, count: 64 * 1024))  // all CRs: worst case for a CR-splitting parser
        let events = try parser.feed(chunk)
        let pieces = events.compactMap { event -> Int? in
            if case .body(let bytes) = event { return bytes.readableBytes }
            return nil
        }
        #expect(pieces.count == 1)
        #expect(pieces[0] >= 64 * 1024 - 8)  // all but a possible delimiter prefix at the end
    }
}
