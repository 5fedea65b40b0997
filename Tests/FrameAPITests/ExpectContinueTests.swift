@testable import FrameAPI
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import NIOEmbedded
import NIOHTTPTypes
import Testing

@Suite("Expect: 100-continue")
struct ExpectContinueTests {
    // MARK: The channel handler on its own

    static func request(expect: String?) -> HTTPRequestPart {
        var fields = HTTPFields()
        if let expect { fields[.expect] = expect }
        return .head(HTTPRequest(method: .post, scheme: nil, authority: "x", path: "/videos", headerFields: fields))
    }

    /// The response heads the handler wrote (interim and final) since the last call.
    static func writtenStatuses(_ channel: EmbeddedChannel) throws -> [Int] {
        var statuses: [Int] = []
        while let part = try channel.readOutbound(as: HTTPResponsePart.self) {
            if case .head(let head) = part { statuses.append(head.status.code) }
        }
        return statuses
    }

    @Test func continueIsSentOnceWhenTheBodyIsAskedFor() throws {
        let channel = EmbeddedChannel(handler: ExpectContinueHandler())
        try channel.writeInbound(Self.request(expect: "100-Continue"))
        #expect(try Self.writtenStatuses(channel) == [], "nothing before a route reads the body")
        channel.pipeline.triggerUserOutboundEvent(ExpectContinueHandler.SendContinue(), promise: nil)
        #expect(try Self.writtenStatuses(channel) == [100])
        channel.pipeline.triggerUserOutboundEvent(ExpectContinueHandler.SendContinue(), promise: nil)
        #expect(try Self.writtenStatuses(channel) == [], "only one 100 per request")
        try channel.writeOutbound(HTTPResponsePart.head(HTTPResponse(status: .created)))
        #expect(try Self.writtenStatuses(channel) == [201])
    }

    @Test func aFinalResponseFirstCancelsTheContinue() throws {
        let channel = EmbeddedChannel(handler: ExpectContinueHandler())
        try channel.writeInbound(Self.request(expect: "100-continue"))
        try channel.writeOutbound(HTTPResponsePart.head(HTTPResponse(status: .unauthorized)))
        channel.pipeline.triggerUserOutboundEvent(ExpectContinueHandler.SendContinue(), promise: nil)
        #expect(try Self.writtenStatuses(channel) == [401])
    }

    @Test func requestsWithoutTheExpectationGetNoContinue() throws {
        let channel = EmbeddedChannel(handler: ExpectContinueHandler())
        try channel.writeInbound(Self.request(expect: nil))
        channel.pipeline.triggerUserOutboundEvent(ExpectContinueHandler.SendContinue(), promise: nil)
        try channel.writeInbound(Self.request(expect: "something-else"))
        channel.pipeline.triggerUserOutboundEvent(ExpectContinueHandler.SendContinue(), promise: nil)
        #expect(try Self.writtenStatuses(channel) == [])
        // The next request on the same connection that does expect it gets its own 100.
        try channel.writeInbound(Self.request(expect: "100-continue"))
        channel.pipeline.triggerUserOutboundEvent(ExpectContinueHandler.SendContinue(), promise: nil)
        #expect(try Self.writtenStatuses(channel) == [100])
    }

    // MARK: Over a real socket, through the API

    static func uploadHead(_ multipart: Multipart, token: String?) -> String {
        var head = "POST /videos HTTP/1.1\r\nHost: localhost\r\n"
        if let token { head += "Authorization: Bearer \(token)\r\n" }
        head += "Content-Type: multipart/form-data; boundary=\(multipart.boundary)\r\n"
        head += "Content-Length: \(multipart.body.readableBytes)\r\nExpect: 100-continue\r\n\r\n"
        return head
    }

    /// What curl does for any body over 1 MB: send the head, wait for 100, then the body. Without
    /// the 100 the upload would only start after the client's own timeout (curl: one second).
    @Test func anUploadIsToldToContinueAndLands() async throws {
        try await Harness.run(.live) { h, client in
            let (token, _) = try await h.user(client)
            let bytes = UploadTests.pattern(300_000)
            let multipart = Multipart(files: [("clip.mp4", bytes)], fields: [], fieldsFirst: false)
            let connection = try await RawHTTPConnection.connect(port: try #require(client.port))
            try await connection.send(Self.uploadHead(multipart, token: token))
            let interim = try await connection.readHead(within: 5)
            #expect(interim?.hasPrefix("HTTP/1.1 100 Continue") == true)
            try await connection.send(multipart.body)
            let final = try await connection.readHead(within: 10)
            #expect(final?.hasPrefix("HTTP/1.1 201") == true)
            await connection.close()
            #expect(h.uploadedFiles().contains { $0.hasSuffix("input.mp4") })
        }
    }

    /// A request the API turns away before reading the body is answered at once, with no 100,
    /// so the client never sends the (possibly huge) body at all.
    @Test func aRefusedUploadIsAnsweredBeforeItsBodyIsSent() async throws {
        try await Harness.run(.live) { h, client in
            let multipart = Multipart(files: [("clip.mp4", UploadTests.pattern(300_000))], fields: [], fieldsFirst: false)
            let connection = try await RawHTTPConnection.connect(port: try #require(client.port))
            try await connection.send(Self.uploadHead(multipart, token: nil))
            let head = try await connection.readHead(within: 5)
            #expect(head?.hasPrefix("HTTP/1.1 401") == true)
            await connection.close()
            #expect(h.uploadedFiles().isEmpty)
        }
    }
}
