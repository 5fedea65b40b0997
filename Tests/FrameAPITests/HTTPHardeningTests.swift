@testable import FrameAPI
import FrameStore
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOHTTPTypes
import Testing

/// What every answer carries and how broken requests are answered.
@Suite("HTTP hardening")
struct HTTPHardeningTests {
    static let securityFields: [(String, String)] = [
        ("X-Content-Type-Options", "nosniff"), ("X-Frame-Options", "DENY"), ("Referrer-Policy", "no-referrer"),
    ]

    static func expectSecurityHeaders(_ headers: HTTPFields, _ what: String) {
        for (name, value) in securityFields {
            #expect(headers[HTTPField.Name(name)!] == value, "\(name) on \(what)")
        }
        let csp = headers[.contentSecurityPolicy] ?? ""
        #expect(csp.contains("default-src 'self'"), "CSP on \(what)")
        #expect(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"))
    }

    @Test func everyAnswerCarriesSecurityHeaders() async throws {
        try await Harness.run { h, client in
            let (token, _) = try await h.user(client)
            let answers: [(String, TestResponse)] = [
                ("200", try await client.execute(uri: "/auth/me", method: .get, headers: h.auth(token))),
                ("401", try await client.execute(uri: "/videos", method: .get)),
                ("404 route", try await client.execute(uri: "/no/such/route", method: .get)),
                ("422", try await client.execute(uri: "/auth/login", method: .post, headers: h.json, body: ByteBuffer(string: "{}"))),
                ("admin", try await client.execute(uri: "/admin/ping", method: .get, headers: h.auth("admin-token"))),
            ]
            for (what, response) in answers { Self.expectSecurityHeaders(response.headers, what) }
        }
    }

    @Test func unknownRoutesAndWrongMethodsAreProblemDocuments() async throws {
        try await Harness.run { h, client in
            let missing = try await client.execute(uri: "/nothing/here", method: .get)
            #expect(missing.status == .notFound)
            #expect(missing.problemCode == "NOT_FOUND")
            let wrong = try await client.execute(uri: "/auth/login", method: .get)
            #expect(wrong.status == .methodNotAllowed)
            #expect(wrong.problemCode == "METHOD_NOT_ALLOWED")
            #expect(wrong.headers[.allow] == "POST")
            let put = try await client.execute(uri: "/videos", method: .put)
            #expect(put.headers[.allow] == "GET, POST")
        }
    }

    @Test func aJSONBodyOverTheLimitIsAProblemDocument() async throws {
        try await Harness.run { h, client in
            let big = ByteBuffer(string: "{\"email\":\"" + String(repeating: "a", count: 100_000) + "\"}")
            let response = try await client.execute(uri: "/auth/login", method: .post, headers: h.json, body: big)
            #expect(response.status == .contentTooLarge)
            #expect(response.problemCode == "REQUEST_TOO_LARGE")
        }
    }

    /// A 500 says that something failed, never what: paths, SQL and errno stay in the log.
    @Test func internalErrorsDoNotLeakTheirCause() async throws {
        try await Harness.run(ingest: .leaky) { h, client in
            let (token, _) = try await h.user(client)
            let response = try await h.upload(client, token: token, files: [("a.mp4", [1, 2, 3])])
            #expect(response.status == .internalServerError)
            #expect(response.problemCode == "INTERNAL_ERROR")
            let text = String(buffer: response.body)
            #expect(!text.contains("private") && !text.contains("SQLSTATE"), "\(text)")
        }
    }

    // MARK: Over a real socket

    /// The client announces 100 bytes, sends 10 and ends its side: a 400, not a 500.
    @Test(arguments: ["/auth/login", "/videos"])
    func aBodyShorterThanItsContentLengthIs400(_ path: String) async throws {
        try await Harness.run(.live) { h, client in
            let (token, _) = try await h.user(client)
            let connection = try await RawHTTPConnection.connect(port: try #require(client.port))
            let type = path == "/videos" ? "multipart/form-data; boundary=b" : "application/json"
            try await connection.send(
                "POST \(path) HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer \(token)\r\nContent-Type: \(type)\r\n"
                    + "Content-Length: 100\r\n\r\n--b\r\n{\"em")
            try await connection.finishSending()
            let head = try #require(try await connection.readHead())
            #expect(head.hasPrefix("HTTP/1.1 400"), "\(head)")
            #expect(head.lowercased().contains("application/problem+json"))
            await connection.close()
            #expect(h.uploadedFiles().isEmpty)
        }
    }

    @Test func oversizedHeadersAre431WithoutInternalNames() async throws {
        try await Harness.run(.live) { _, client in
            let connection = try await RawHTTPConnection.connect(port: try #require(client.port))
            defer { Task { await connection.close() } }
            try await connection.send("GET /health HTTP/1.1\r\nHost: localhost\r\nX-Big: \(String(repeating: "a", count: 100_000))\r\n\r\n")
            let head = try #require(try await connection.readHead())
            #expect(head.hasPrefix("HTTP/1.1 431"), "\(head)")
            #expect(head.lowercased().contains("application/problem+json"))
            #expect(head.contains("nosniff"))
            let length = try #require(head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") })
            let body = try await connection.readBody(count: Int(length.split(separator: ":")[1].trimmingCharacters(in: .whitespaces))!)
            #expect(body.contains("\"code\":\"HEADERS_TOO_LARGE\""), "\(body)")
            #expect(!body.contains("headerOverflow") && !body.contains("HTTPParserError"), "\(body)")
        }
    }

    @Test func idleKeepAliveConnectionsAreClosed() async throws {
        try await Harness.run(.live, idleTimeout: .seconds(1)) { _, client in
            let connection = try await RawHTTPConnection.connect(port: try #require(client.port))
            defer { Task { await connection.close() } }
            let sent = ContinuousClock.now
            try await connection.send("GET /nothing HTTP/1.1\r\nHost: localhost\r\n\r\n")
            #expect(try await connection.readHead() != nil)
            while !connection.isClosed, ContinuousClock.now - sent < .seconds(10) {
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(connection.isClosed, "the server closed the idle connection")
            // The server's last activity (its answer) came after the request was sent.
            #expect(ContinuousClock.now - sent >= .milliseconds(900), "not before the timeout")
        }
    }

    // MARK: The parse-error handler on its own

    @Test func parseErrorsDuringARequestAreLeftToTheRoute() throws {
        let channel = EmbeddedChannel(handler: HTTPParseErrorHandler())
        try channel.writeInbound(HTTPRequestPart.head(HTTPRequest(method: .post, scheme: nil, authority: "x", path: "/v")))
        _ = try channel.readInbound(as: HTTPRequestPart.self)
        channel.pipeline.fireErrorCaught(HTTPParserError.invalidEOFState)
        #expect(throws: HTTPParserError.self) { try channel.throwIfErrorCaught() }
        #expect(try channel.readOutbound(as: HTTPResponsePart.self) == nil)
    }
}

/// Request bodies that stall, and the keys and texts the throttle and errors use.
@Suite("HTTP hardening: stalls and keys")
struct HTTPStallTests {
    static func head(path: String = "/v") -> HTTPRequestPart {
        .head(HTTPRequest(method: .post, scheme: nil, authority: "x", path: path))
    }

    /// Only time spent waiting for the client counts: while the server asks for nothing
    /// (back-pressure from a slow disk) the clock does not run.
    @Test func theBodyClockRunsOnlyWhileTheServerWaitsForTheClient() throws {
        let channel = EmbeddedChannel(handler: BodyReadTimeoutHandler(timeout: .seconds(10)))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try channel.writeInbound(Self.head())
        channel.embeddedEventLoop.advanceTime(by: .seconds(60))
        #expect(channel.isActive, "no read was asked for: the server is the slow one")
        channel.read()
        channel.embeddedEventLoop.advanceTime(by: .seconds(6))
        try channel.writeInbound(HTTPRequestPart.body(ByteBuffer(string: "x")))
        channel.read()
        channel.embeddedEventLoop.advanceTime(by: .seconds(6))
        #expect(channel.isActive, "bytes arrived within the timeout")
        channel.embeddedEventLoop.advanceTime(by: .seconds(5))
        #expect(!channel.isActive, "closed after 10 s of waiting for nothing")
        var statuses: [Int] = []
        while let part = try channel.readOutbound(as: HTTPResponsePart.self) {
            if case .head(let h) = part { statuses.append(h.status.code) }
        }
        #expect(statuses == [408])
    }

    @Test func aFinishedBodyIsNotTimed() throws {
        let channel = EmbeddedChannel(handler: BodyReadTimeoutHandler(timeout: .seconds(1)))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try channel.writeInbound(Self.head())
        try channel.writeInbound(HTTPRequestPart.end(nil))
        channel.read()
        channel.embeddedEventLoop.advanceTime(by: .seconds(30))
        #expect(channel.isActive, "between requests the idle timeout is in charge")
    }

    @Test func aStalledUploadIs408AndLeavesNothing() async throws {
        try await Harness.run(.live, bodyTimeout: .seconds(1)) { h, client in
            let (token, _) = try await h.user(client)
            let connection = try await RawHTTPConnection.connect(port: try #require(client.port))
            defer { Task { await connection.close() } }
            try await connection.send(
                "POST /videos HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer \(token)\r\n"
                    + "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n"
                    + "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.mp4\"\r\n\r\n"
                    + String(repeating: "v", count: 3000))
            let head = try #require(try await connection.readHead(within: 10))
            #expect(head.hasPrefix("HTTP/1.1 408"), "\(head)")
            try await waitUntil { connection.isClosed && h.uploadedFiles().isEmpty }
        }
    }

    @Test func ipv6ClientsAreCountedPerSlash64() {
        let a: [UInt8] = [0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 2, 9, 9, 9, 9, 9, 9, 9, 9]
        var b = a
        b[15] = 1
        #expect(APIRequestContext.addressKey(ipv6: a) == "2001:db8:1:2::/64")
        #expect(APIRequestContext.addressKey(ipv6: a) == APIRequestContext.addressKey(ipv6: b))
        let mapped: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 192, 0, 2, 7]
        #expect(APIRequestContext.addressKey(ipv6: mapped) == "192.0.2.7")
    }

    @Test func storeErrorsAreAnsweredWithoutSQL() {
        let conflict = APIError.from(StoreError.uniqueViolation(
            constraint: "users_email_key", message: "duplicate key value violates unique constraint (Key (email)=(a@b) exists)"))
        #expect(conflict.status == .conflict)
        #expect(!conflict.detail.contains("users_email_key") && !conflict.detail.contains("Key (email)"))
        #expect(conflict.cause?.contains("users_email_key") == true, "kept for the log")
        let down = APIError.from(StoreError.unavailable("could not connect to server at 10.1.2.3:5432"))
        #expect(down.status == .serviceUnavailable && !down.detail.contains("10.1.2.3"))
        let missing = APIError.from(StoreError.notFound("no such video"))
        #expect(missing.status == .notFound && missing.detail == "no such video")
    }

    @Test func anAbsurdlyLongLoginAddressIsRefusedBeforeItIsCounted() async throws {
        try await Harness.run { h, client in
            let response = try await client.execute(
                uri: "/auth/login", method: .post, headers: h.json,
                body: Harness.body(["email": String(repeating: "a", count: 60_000) + "@example.com", "password": "x"]))
            #expect(response.status == .unprocessableContent)
            #expect(h.api.logins.accountKeys == 0)
        }
    }
}
