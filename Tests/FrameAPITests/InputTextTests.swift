import FrameAPI
import Foundation
import HummingbirdTesting
import NIOCore
import Testing

/// Control characters in any input string are refused with 422, so nothing reaches the C
/// libraries below (libpq, bcrypt) that would cut a string at its first NUL.
@Suite("Control characters in input")
struct InputTextTests {
    /// The reported case: bcrypt hashed `Abc1!` and the account then opened with it.
    @Test func aPasswordWithANulIsRefusedNotTruncated() async throws {
        try await Harness.run { h, client in
            let register = try await client.execute(
                uri: "/auth/register", method: .post, headers: h.json,
                body: Harness.body(["email": "nul@example.com", "password": "Abc1!\u{0}anything"]))
            #expect(register.status == .unprocessableContent)
            #expect(register.problemCode == "VALIDATION_FAILED")
            #expect(try register.decode(Problem.self).detail.contains("U+0000"))
            let login = try await client.execute(
                uri: "/auth/login", method: .post, headers: h.json,
                body: Harness.body(["email": "nul@example.com", "password": "Abc1!"]))
            #expect(login.status == .unauthorized)
            #expect(try await h.api.users.find(email: "nul@example.com") == nil)
        }
    }

    @Test func controlCharactersInAnyJSONFieldAreRefused() async throws {
        try await Harness.run { h, client in
            _ = try await h.user(client, email: "alice@example.com")
            let cases: [(String, [String: String])] = [
                ("/auth/register", ["email": "eve@example.com\u{0}.evil", "password": Harness.password]),
                ("/auth/register", ["email": "eve@example.com", "password": Harness.password, "name": "Eve\r\nBcc: all"]),
                ("/auth/register", ["email": "eve@example.com", "password": Harness.password, "name": "\u{202E}evE"]),
                ("/auth/login", ["email": "alice@example.com\u{0}", "password": Harness.password]),
                ("/auth/login", ["email": "alice@example.com", "password": Harness.password + "\u{0}x"]),
            ]
            for (uri, fields) in cases {
                let response = try await client.execute(uri: uri, method: .post, headers: h.json, body: Harness.body(fields))
                #expect(response.status == .unprocessableContent, "\(uri) \(fields)")
                #expect(response.problemCode == "VALIDATION_FAILED")
            }
            #expect(try await h.api.users.count() == 1)
        }
    }

    @Test func controlCharactersInFileNamesAreRefusedBeforeWriting() async throws {
        try await Harness.run { h, client in
            let (token, _) = try await h.user(client)
            for name in ["clip\u{0}.mp4", "clip\u{1b}[31m.mp4", "\u{202E}4pm.exe.mp4", "a\tb.mp4", "a\nb.mp4"] {
                let response = try await h.upload(client, token: token, files: [(name, [1, 2, 3])])
                #expect(response.status == .unprocessableContent, "\(name.debugDescription)")
                #expect(response.problemCode == "VALIDATION_FAILED")
                #expect(h.uploadedFiles().isEmpty)
            }
            let long = String(repeating: "x", count: 300) + ".mp4"
            #expect(try await h.upload(client, token: token, files: [(long, [1])]).status == .unprocessableContent)
        }
    }

    @Test func controlCharactersInFormFieldsAndQueryParametersAreRefused() async throws {
        try await Harness.run { h, client in
            let (token, _) = try await h.user(client)
            let field = try await h.upload(client, token: token, files: [("a.mp4", [1])], fields: [("labels", "gpu=yes\u{0}")])
            #expect(field.status == .unprocessableContent)
            #expect(try field.decode(Problem.self).detail.contains("labels"))
            let query = try await h.upload(client, token: token, files: [("a.mp4", [1])], query: "?fps=1%00")
            #expect(query.status == .unprocessableContent)
            #expect(query.problemCode == "VALIDATION_FAILED")
            let list = try await client.execute(uri: "/videos?status=QUEUED%0D%0A", method: .get, headers: h.auth(token))
            #expect(list.status == .unprocessableContent)
            #expect(h.uploadedFiles().isEmpty)
        }
    }

    /// The store itself refuses a NUL instead of letting libpq cut the value short.
    @Test func theStoreRefusesANulRatherThanTruncating() async throws {
        try await Harness.run { (h: Harness, _: any TestClientProtocol) async throws -> Void in
            await #expect(throws: (any Error).self) {
                _ = try await h.api.users.create(email: "x@example.com\u{0}.evil", passwordHash: "h")
            }
            let found = try await h.api.users.find(email: "x@example.com")
            #expect(found == nil)
        }
    }
}
