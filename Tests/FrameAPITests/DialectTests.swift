@testable import FrameAPI
import Crypto
import FrameCore
import FrameStore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

/// The routes and behaviours other implementations of this product use ("the dialect"):
/// aliases, refresh tokens, absolute links, `limit`, CORS, lower-case ids, audited and
/// rate-limited downloads.
@Suite("API dialect")
struct DialectTests {
    func json(_ response: TestResponse) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any])
    }

    @Test func aliasesAnswerLikeTheRoutesTheyAlias() async throws {
        try await Harness.run { h, client in
            let (token, _) = try await h.user(client)
            let multipart = Multipart(files: [("clip.mp4", [1, 2, 3])], fields: [("fps", "2")], fieldsFirst: false)
            let uploaded = try await client.execute(
                uri: "/videos/upload", method: .post,
                headers: h.auth(token, [.contentType: "multipart/form-data; boundary=\(multipart.boundary)"]), body: multipart.body)
            #expect(uploaded.status == .created)
            let video = try uploaded.decode(Video.self)
            #expect(video.fps == "2")
            let status = try await client.execute(uri: "/jobs/\(video.id.uuidString.lowercased())/status", method: .get, headers: h.auth(token))
            #expect(status.status == .ok)
            let direct = try await client.execute(uri: "/videos/\(video.id.uuidString.lowercased())", method: .get, headers: h.auth(token))
            #expect(String(buffer: status.body) == String(buffer: direct.body))
            let (other, _) = try await h.user(client)
            #expect(try await client.execute(uri: "/jobs/\(video.id)/status", method: .get, headers: h.auth(other)).status == .notFound)
            // Not COMPLETED yet: no link.
            let early = try await client.execute(uri: "/jobs/\(video.id)/download", method: .get, headers: h.auth(token))
            #expect(early.status == .conflict)
            #expect(early.problemCode == "INVALID_JOB_STATE")
        }
    }

    /// `GET /jobs/{id}/download` answers `{download_url, expires_in}`; the link is absolute (the
    /// request's own scheme and host here) and works as given, without a token.
    @Test func downloadLinksAreAbsoluteAndWorkAsGiven() async throws {
        try await Harness.run(.live) { h, client in
            let (token, _) = try await h.user(client)
            let video = try await h.video(client, token: token)
            try await h.complete(video.id, bytes: Array("zip bytes".utf8))
            let answer = try await client.execute(uri: "/jobs/\(video.id)/download", method: .get, headers: h.auth(token))
            #expect(answer.status == .ok)
            let body = try json(answer)
            let link = try #require(body["download_url"] as? String)
            let expiresIn = try #require(body["expires_in"] as? Int)
            #expect((890...900).contains(expiresIn))
            let url = try #require(URL(string: link))
            #expect(url.scheme == "http" && url.host != nil, "\(link)")
            #expect(link.contains(video.id.uuidString.lowercased()))
            var path = url.path
            if let query = url.query { path += "?" + query }
            let fetched = try await client.execute(uri: path, method: .get)
            #expect(fetched.status == .ok)
            #expect(String(buffer: fetched.body) == "zip bytes")
            // The older route gives the same absolute form.
            let older = try await client.execute(uri: "/videos/\(video.id)/download-url", method: .get, headers: h.auth(token))
            #expect((try json(older)["url"] as? String)?.hasPrefix("http://") == true)
        }
    }

    @Test func aConfiguredPublicBaseURLPrefixesLinks() async throws {
        try await Harness.run(configure: { $0.publicBaseURL = "https://frames.example/" }) { h, client in
            let (token, _) = try await h.user(client)
            let video = try await h.video(client, token: token)
            try await h.complete(video.id, bytes: [1])
            let answer = try await client.execute(uri: "/jobs/\(video.id)/download", method: .get, headers: h.auth(token))
            let link = try #require(try json(answer)["download_url"] as? String)
            #expect(link.hasPrefix("https://frames.example/downloads/\(video.id.uuidString.lowercased())?expires="), "\(link)")
        }
    }

    /// Refresh tokens rotate; a rotated token used again revokes the whole login; logout revokes;
    /// only hashes are stored.
    @Test func refreshTokensRotateAndLogoutRevokes() async throws {
        try await Harness.run { h, client in
            let email = "refresh@example.com"
            _ = try await client.execute(uri: "/auth/register", method: .post, headers: h.json,
                                         body: Harness.body(["email": email, "password": Harness.password]))
            let login = try json(try await client.execute(uri: "/auth/login", method: .post, headers: h.json,
                                                          body: Harness.body(["email": email, "password": Harness.password])))
            let first = try #require(login["refreshToken"] as? String)
            #expect((login["refreshExpiresIn"] as? Int ?? 0) > 3600)
            // Stored hashed: the token itself is nowhere in the table, its SHA-256 is.
            let hash = SHA256.hash(data: Data(first.utf8)).map { String(format: "%02x", $0) }.joined()
            let stored = try await h.db.withConnection { conn in
                (try conn.query("SELECT count(*) AS n FROM refresh_tokens WHERE token_hash = $1", first).first!.int("n"),
                 try conn.query("SELECT count(*) AS n FROM refresh_tokens WHERE token_hash = $1", hash).first!.int("n"))
            }
            #expect(stored == (0, 1))

            func refresh(_ token: String, key: String = "refreshToken") async throws -> TestResponse {
                try await client.execute(uri: "/auth/refresh", method: .post, headers: h.json, body: Harness.body([key: token]))
            }
            let rotated = try await refresh(first)
            #expect(rotated.status == .ok)
            let pair = try json(rotated)
            let second = try #require(pair["refreshToken"] as? String)
            #expect(second != first)
            let access = try #require(pair["accessToken"] as? String)
            #expect(try await client.execute(uri: "/auth/me", method: .get, headers: h.auth(access)).status == .ok)
            // The other implementations' spelling works too.
            let third = try #require(try json(try await refresh(second, key: "refresh_token"))["refreshToken"] as? String)
            // Reusing a rotated token is refused and kills the family: the newest one dies with it.
            let reused = try await refresh(first)
            #expect(reused.status == .unauthorized)
            #expect(reused.problemCode == "UNAUTHORIZED")
            #expect(try await refresh(third).status == .unauthorized)

            // A fresh login, then logout: its refresh token stops working.
            let again = try json(try await client.execute(uri: "/auth/login", method: .post, headers: h.json,
                                                          body: Harness.body(["email": email, "password": Harness.password])))
            let token = try #require(again["refreshToken"] as? String)
            let logout = try await client.execute(uri: "/auth/logout", method: .post, headers: h.json,
                                                  body: Harness.body(["refreshToken": token]))
            #expect(logout.status == .noContent)
            #expect(try await refresh(token).status == .unauthorized)
            #expect(try await refresh("not-a-token").status == .unauthorized)
        }
    }

    @Test func limitIsASynonymOfSizeAndPagesPastTheEndAre422() async throws {
        try await Harness.run { h, client in
            let (token, _) = try await h.user(client)
            for i in 0..<5 { _ = try await h.video(client, token: token, name: "v\(i).mp4") }
            let limited = try await client.execute(uri: "/videos?limit=2&page=1", method: .get, headers: h.auth(token)).decode(Page.self)
            #expect(limited.items.count == 2 && limited.size == 2 && limited.page == 1 && limited.totalElements == 5)
            let last = try await client.execute(uri: "/videos?limit=2&page=2", method: .get, headers: h.auth(token)).decode(Page.self)
            #expect(last.items.count == 1)
            let past = try await client.execute(uri: "/videos?limit=2&page=3", method: .get, headers: h.auth(token))
            #expect(past.status == .unprocessableContent)
            #expect(past.problemCode == "VALIDATION_FAILED")
            let disagree = try await client.execute(uri: "/videos?limit=2&size=3", method: .get, headers: h.auth(token))
            #expect(disagree.status == .unprocessableContent)
            // An empty list still has its first page.
            let (other, _) = try await h.user(client)
            #expect(try await client.execute(uri: "/videos?page=0", method: .get, headers: h.auth(other)).status == .ok)
            #expect(try await client.execute(uri: "/videos?page=1", method: .get, headers: h.auth(other)).status == .unprocessableContent)
        }
    }

    @Test func corsAllowsOnlyListedOrigins() async throws {
        try await Harness.run(configure: { $0.corsAllowedOrigins = ["https://app.example"] }) { h, client in
            let (token, _) = try await h.user(client)
            let preflight = try await client.execute(uri: "/videos", method: .options, headers: [
                .origin: "https://app.example", .accessControlRequestMethod: "POST",
                .accessControlRequestHeaders: "authorization, tus-resumable",
            ])
            #expect(preflight.status == .noContent)
            #expect(preflight.headers[.accessControlAllowOrigin] == "https://app.example")
            #expect(preflight.headers[.accessControlAllowCredentials] == "true")
            #expect(preflight.headers[.accessControlAllowMethods]?.contains("PATCH") == true)
            #expect(preflight.headers[.accessControlAllowHeaders]?.contains("Upload-Offset") == true)
            let listed = try await client.execute(uri: "/videos", method: .get, headers: h.auth(token, [.origin: "https://app.example"]))
            #expect(listed.status == .ok)
            #expect(listed.headers[.accessControlAllowOrigin] == "https://app.example")
            #expect(listed.headers[.accessControlExposeHeaders]?.contains("Upload-Offset") == true)
            // Errors carry the headers too, or the page could not read them.
            let denied = try await client.execute(uri: "/videos", method: .get, headers: [.origin: "https://app.example"])
            #expect(denied.status == .unauthorized)
            #expect(denied.headers[.accessControlAllowOrigin] == "https://app.example")

            let stranger = try await client.execute(uri: "/videos", method: .options, headers: [
                .origin: "https://evil.example", .accessControlRequestMethod: "GET",
            ])
            #expect(stranger.status == .forbidden)
            #expect(stranger.headers[.accessControlAllowOrigin] == nil)
            let strangerGet = try await client.execute(uri: "/videos", method: .get, headers: h.auth(token, [.origin: "https://evil.example"]))
            #expect(strangerGet.headers[.accessControlAllowOrigin] == nil)
            #expect(strangerGet.headers[.accessControlAllowCredentials] == nil)
        }
        // None by default.
        try await Harness.run { _, client in
            let preflight = try await client.execute(uri: "/videos", method: .options, headers: [
                .origin: "https://app.example", .accessControlRequestMethod: "GET",
            ])
            #expect(preflight.headers[.accessControlAllowOrigin] == nil)
        }
    }

    /// No JSON body writes an id in upper case (JSONEncoder would, for a plain UUID).
    @Test func idsAreLowerCaseInEveryBody() async throws {
        try await Harness.run { h, client in
            let registered = try await client.execute(uri: "/auth/register", method: .post, headers: h.json,
                                                      body: Harness.body(["email": "ids@example.com", "password": Harness.password]))
            let login = try await client.execute(uri: "/auth/login", method: .post, headers: h.json,
                                                 body: Harness.body(["email": "ids@example.com", "password": Harness.password]))
            let token = try login.decode(Token.self).accessToken
            let video = try await h.video(client, token: token)
            var bodies = [String(buffer: registered.body)]
            for uri in ["/auth/me", "/videos", "/videos/\(video.id)", "/jobs/\(video.id)/status"] {
                bodies.append(String(buffer: try await client.execute(uri: uri, method: .get, headers: h.auth(token)).body))
            }
            let uploaded = try await h.upload(client, token: token, files: [("a.mp4", [1]), ("b.mp4", [2])])
            bodies.append(String(buffer: uploaded.body))
            var tus = h.auth(token, [.tusResumable: "1.0.0", .uploadLength: "5"])
            tus[.uploadMetadata] = "filename " + Data("c.mp4".utf8).base64EncodedString()
            let created = try await client.execute(uri: "/uploads", method: .post, headers: tus)
            let location = try #require(created.headers[.location])
            bodies.append(String(buffer: try await client.execute(uri: URL(string: location)!.path, method: .get, headers: h.auth(token)).body))
            let uuid = try Regex("[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")
            var seen = 0
            for body in bodies {
                for match in body.matches(of: uuid) {
                    seen += 1
                    #expect(String(body[match.range]) == String(body[match.range]).lowercased(), "\(body)")
                }
            }
            #expect(seen >= bodies.count)
        }
    }

    /// Downloads are audited, and past the per-user limit answered 429 with Retry-After; a ranged
    /// request continuing a download is not counted again; a signed link counts for its owner.
    @Test func downloadsAreAuditedAndRateLimitedPerUser() async throws {
        try await Harness.run(configure: { $0.downloadsPerWindow = 3; $0.downloadWindow = .seconds(60) }) { h, client in
            let (token, userID) = try await h.user(client)
            let video = try await h.video(client, token: token)
            try await h.complete(video.id, bytes: Array(repeating: 9, count: 100))
            for _ in 0..<2 {
                #expect(try await client.execute(uri: "/videos/\(video.id)/download", method: .get, headers: h.auth(token)).status == .ok)
            }
            let continued = try await client.execute(uri: "/videos/\(video.id)/download", method: .get,
                                                     headers: h.auth(token, [.range: "bytes=50-"]))
            #expect(continued.status == .partialContent)
            // The link is issued (audited, not counted) and its download is the third counted one.
            let link = try json(try await client.execute(uri: "/jobs/\(video.id)/download", method: .get, headers: h.auth(token)))
            let linkText = try #require(link["download_url"] as? String)
            let url = try #require(URL(string: linkText))
            #expect(try await client.execute(uri: url.path + "?" + (url.query ?? ""), method: .get).status == .ok)
            let limited = try await client.execute(uri: "/videos/\(video.id)/download", method: .get, headers: h.auth(token))
            #expect(limited.status == .tooManyRequests)
            #expect(limited.problemCode == "RATE_LIMITED")
            let retry = try #require(limited.headers[.retryAfter].flatMap(Int.init))
            #expect((1...60).contains(retry))
            #expect(try await client.execute(uri: url.path + "?" + (url.query ?? ""), method: .get).status == .tooManyRequests)
            // Another user has a limit of their own.
            let (other, _) = try await h.user(client)
            let theirs = try await h.video(client, token: other)
            try await h.complete(theirs.id, bytes: [1])
            #expect(try await client.execute(uri: "/videos/\(theirs.id)/download", method: .get, headers: h.auth(other)).status == .ok)

            let audit = try await DownloadAuditStore(database: h.db).entries(jobID: video.id)
            #expect(audit.map(\.kind) == [.archive, .archive, .archive, .link, .signedArchive])
            #expect(audit.allSatisfy { $0.userID == userID })
        }
    }

    @Test func continuationRanges() {
        #expect(DownloadGate.continuesDownload("bytes=100-"))
        #expect(DownloadGate.continuesDownload("bytes=100-200"))
        #expect(!DownloadGate.continuesDownload("bytes=0-"))
        #expect(!DownloadGate.continuesDownload("bytes=-500"))
        #expect(!DownloadGate.continuesDownload("bytes=5-10,20-30"))
        #expect(!DownloadGate.continuesDownload(nil))
    }
}
