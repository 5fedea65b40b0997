import FrameAPI
import FrameCore
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

@Suite("Who may see what")
struct AuthorizationTests {
    static let routes: [(HTTPRequest.Method, String)] = [
        (.post, "/videos"), (.get, "/videos"), (.get, "/videos/ID"), (.delete, "/videos/ID"),
        (.get, "/videos/ID/download"), (.get, "/videos/ID/download-url"), (.get, "/auth/me"),
    ]

    @Test func everyVideoRouteNeedsAValidToken() async throws {
        try await Harness.run { h, client in
            let (token, _) = try await h.user(client)
            let video = try await h.video(client, token: token)
            // Same secret, issued two hours ago: correctly signed but expired.
            let expired = try await TokenService(secret: Harness.secret)
                .issue(userID: video.id, now: Date().addingTimeInterval(-7200))
            let forged = try await TokenService(secret: "another-secret").issue(userID: video.id)
            let credentials: [HTTPFields] = [
                [:], h.auth("not-a-jwt"), h.auth(expired), h.auth(forged), [.authorization: "Basic dXNlcjpwYXNz"],
                h.auth(token + "x"),
            ]
            for (method, template) in Self.routes {
                let uri = template.replacingOccurrences(of: "ID", with: video.id.uuidString)
                for headers in credentials {
                    let response = try await client.execute(uri: uri, method: method, headers: headers)
                    #expect(response.status == .unauthorized, "\(method) \(uri) with \(headers)")
                    #expect(response.problemCode == "UNAUTHORIZED")
                }
            }
        }
    }

    @Test func anotherUsersVideoIsNotFound() async throws {
        try await Harness.run { h, client in
            let (alice, _) = try await h.user(client)
            let (mallory, _) = try await h.user(client)
            let video = try await h.video(client, token: alice)
            try await h.complete(video.id, bytes: Array(repeating: 1, count: 100))
            for (method, template) in Self.routes where template.contains("ID") {
                let uri = template.replacingOccurrences(of: "ID", with: video.id.uuidString)
                let response = try await client.execute(uri: uri, method: method, headers: h.auth(mallory))
                #expect(response.status == .notFound, "\(method) \(uri)")
                #expect(response.problemCode == "NOT_FOUND")
                // The owner still gets it (so the 404 above is about ownership, not the route).
                if method == .get {
                    let own = try await client.execute(uri: uri, method: method, headers: h.auth(alice))
                    #expect(own.status == .ok, "\(method) \(uri) as owner")
                }
            }
            let list = try await client.execute(uri: "/videos", method: .get, headers: h.auth(mallory))
            #expect(try list.decode(Page.self).totalElements == 0)
            let malformed = try await client.execute(uri: "/videos/not-a-uuid", method: .get, headers: h.auth(alice))
            #expect(malformed.status == .notFound)
        }
    }

    @Test func signedLinksRefuseTamperingAndExpiry() async throws {
        try await Harness.run { h, client in
            let (token, _) = try await h.user(client)
            let video = try await h.video(client, token: token)
            let other = try await h.video(client, token: token, name: "other.mp4")
            try await h.complete(video.id, bytes: Array("PK-archive".utf8))
            try await h.complete(other.id, bytes: Array("PK-other".utf8))
            let link = try await client.execute(uri: "/videos/\(video.id)/download-url", method: .get, headers: h.auth(token))
                .decode(Link.self)
            #expect(link.expiresAt > Date().addingTimeInterval(14 * 60))
            #expect(link.expiresAt <= Date().addingTimeInterval(15 * 60 + 1))

            // No token needed.
            let ok = try await client.execute(uri: link.url, method: .get)
            #expect(ok.status == .ok)
            #expect(String(buffer: ok.body) == "PK-archive")

            let components = URLComponents(string: link.url)!
            let expires = Int(components.queryItems!.first { $0.name == "expires" }!.value!)!
            let signature = components.queryItems!.first { $0.name == "signature" }!.value!
            var flipped = Array(signature)
            flipped[0] = flipped[0] == "0" ? "1" : "0"
            let tampered = [
                "/downloads/\(video.id)?expires=\(expires + 3600)&signature=\(signature)",  // extended
                "/downloads/\(other.id)?expires=\(expires)&signature=\(signature)",  // moved to another job
                "/downloads/\(video.id)?expires=\(expires)&signature=\(String(flipped))",
                "/downloads/\(video.id)?expires=\(expires)",
                "/downloads/\(video.id)?expires=\(expires)&signature=zz",
            ]
            for uri in tampered {
                let response = try await client.execute(uri: uri, method: .get)
                #expect(response.status == .forbidden, "\(uri)")
                #expect(response.problemCode == "FORBIDDEN")
            }
            // Correctly signed but in the past.
            let links = SignedLinks(secret: Harness.secret)
            let past = Int64(Date().timeIntervalSince1970) - 10
            let stale = try await client.execute(
                uri: "/downloads/\(video.id)?expires=\(past)&signature=\(links.signature(id: video.id, expires: past))",
                method: .get)
            #expect(stale.status == .forbidden)
        }
    }

    @Test func downloadsWaitForCompletionAndEndAtExpiry() async throws {
        try await Harness.run { h, client in
            let (token, _) = try await h.user(client)
            let video = try await h.video(client, token: token)
            for uri in ["/videos/\(video.id)/download", "/videos/\(video.id)/download-url"] {
                let early = try await client.execute(uri: uri, method: .get, headers: h.auth(token))
                #expect(early.status == .conflict, "\(uri)")
                #expect(early.problemCode == "INVALID_JOB_STATE")
            }
            try await h.complete(video.id, bytes: Array("zip".utf8))
            let link = try await client.execute(uri: "/videos/\(video.id)/download-url", method: .get, headers: h.auth(token))
                .decode(Link.self)
            try await h.setStatus(video.id, .expired)
            let late: [(String, HTTPFields)] = [
                ("/videos/\(video.id)/download", h.auth(token)), ("/videos/\(video.id)/download-url", h.auth(token)),
                (link.url, HTTPFields()),
            ]
            for (uri, headers) in late {
                let response = try await client.execute(uri: uri, method: .get, headers: headers)
                #expect(response.status == .gone, "\(uri)")
            }
        }
    }
}
