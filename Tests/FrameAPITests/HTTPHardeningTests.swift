@testable import FrameAPI
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
            #expect(!text.contains("/srv/private") && !text.contains("SQLSTATE"), "\(text)")
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
        try await Harness.run(.live, idleTimeout: .milliseconds(500)) { _, client in
            let connection = try await RawHTTPConnection.connect(port: try #require(client.port))
            defer { Task { await connection.close() } }
            try await connection.send("GET /nothing HTTP/1.1\r\nHost: localhost\r\n\r\n")
            #expect(try await connection.readHead() != nil)
            #expect(!connection.isClosed)
            try await Task.sleep(for: .seconds(2))
            #expect(connection.isClosed, "the server closed the idle connection")
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
