import FrameCore
import Foundation
import Synchronization
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A video as the API shows it (the fields the CLI uses; `--json` prints the server's own body).
public struct Video: Decodable, Sendable {
    public var id: UUID
    public var originalFilename: String
    public var status: String
    public var progress: Double
    public var frameCount: Int64
    public var sizeBytes: Int64
    public var durationSeconds: Double?
    public var fps: String
    public var format: String
    public var errorCode: String?
    public var errorMessage: String?
    public var createdAt: Date

    public var isFinished: Bool { ["COMPLETED", "FAILED", "CANCELLED", "EXPIRED"].contains(status) }
    public var lowercasedID: String { id.uuidString.lowercased() }
}

extension Video {
    /// A video from its JSON document (a body, or an event's data).
    public init(json: Data) throws {
        self = try UserClient.decoder.decode(Video.self, from: json)
    }
}

/// One page of videos.
public struct VideoPage: Decodable, Sendable {
    public var items: [Video]
    public var page: Int
    public var size: Int
    public var totalElements: Int
}

/// A decoded answer and the body it came from (printed as is by `--json`).
public struct Answer<T: Sendable>: Sendable {
    public var value: T
    public var body: Data
}

/// The user-facing API as the `frameflow` CLI calls it: login, videos, downloads, and the tus
/// uploads of ``TusUploader``. An expired access token is renewed once with the refresh token
/// (and the new pair handed to `onTokens`, which the CLI saves) before a call gives up with 401.
public final class UserClient: Sendable {
    public let baseURL: URL
    private let tokens: Mutex<(access: String?, refresh: String?)>
    private let onTokens: @Sendable (String, String?) -> Void
    let session: URLSession

    public init(baseURL: URL, accessToken: String? = nil, refreshToken: String? = nil,
                onTokens: @escaping @Sendable (String, String?) -> Void = { _, _ in }) {
        self.baseURL = baseURL
        tokens = Mutex((accessToken, refreshToken))
        self.onTokens = onTokens
        let configuration = URLSessionConfiguration.default
        configuration.timeoutIntervalForRequest = 120
        session = URLSession(configuration: configuration)
    }

    static let decoder: JSONDecoder = {
        let d = JSONDecoder()
        d.dateDecodingStrategy = .iso8601
        return d
    }()

    /// The answer of `POST /auth/login` and `/auth/refresh`.
    public struct Login: Decodable, Sendable {
        public var accessToken: String
        public var expiresIn: Int
        public var refreshToken: String?
    }

    // MARK: Accounts

    public func login(email: String, password: String) async throws(APIFailure) -> Login {
        let body = try? JSONSerialization.data(withJSONObject: ["email": email, "password": password])
        let (data, _) = try await send("POST", url("auth/login"), headers: ["Content-Type": "application/json"], body: body,
                                       authorized: false)
        let login: Login = try decode(data)
        tokens.withLock { $0 = (login.accessToken, login.refreshToken) }
        return login
    }

    /// Revokes the refresh token (the server forgets the login); the access token dies with its lifetime.
    public func logout() async throws(APIFailure) {
        guard let refresh = tokens.withLock({ $0.refresh }) else { return }
        let body = try? JSONSerialization.data(withJSONObject: ["refreshToken": refresh])
        _ = try await send("POST", url("auth/logout"), headers: ["Content-Type": "application/json"], body: body, authorized: false)
    }

    // MARK: Videos

    public func videos(status: String? = nil, page: Int = 0, size: Int = 20) async throws(APIFailure) -> Answer<VideoPage> {
        var components = URLComponents(url: url("videos"), resolvingAgainstBaseURL: false)!
        components.queryItems = [URLQueryItem(name: "page", value: "\(page)"), URLQueryItem(name: "size", value: "\(size)")]
            + (status.map { [URLQueryItem(name: "status", value: $0)] } ?? [])
        let (data, _) = try await send("GET", components.url!)
        return Answer(value: try decode(data), body: data)
    }

    public func video(_ id: String) async throws(APIFailure) -> Answer<Video> {
        let path = "videos/" + (try Self.checkedID(id))
        let (data, _) = try await send("GET", url(path))
        return Answer(value: try decode(data), body: data)
    }

    public func cancel(_ id: String) async throws(APIFailure) -> Answer<Video> {
        let path = "videos/" + (try Self.checkedID(id))
        let (data, _) = try await send("DELETE", url(path))
        return Answer(value: try decode(data), body: data)
    }

    /// Streams the video's ZIP to `file` (written to `file.part` and renamed when complete).
    public func download(_ id: String, to file: URL, progress: @escaping @Sendable (Int64, Int64?) -> Void = { _, _ in })
        async throws(APIFailure) -> Int64
    {
        let path = "videos/" + (try Self.checkedID(id)) + "/download"
        var request = URLRequest(url: url(path))
        request.setValue("Bearer \(tokens.withLock { $0.access } ?? "")", forHTTPHeaderField: "Authorization")
        do {
            return try await FileDownload.run(request, to: file, progress: progress)
        } catch let failure as APIFailure {
            guard failure.httpStatus == 401, try await renew() else { throw failure }
            request.setValue("Bearer \(tokens.withLock { $0.access } ?? "")", forHTTPHeaderField: "Authorization")
            do { return try await FileDownload.run(request, to: file, progress: progress) } catch {
                throw (error as? APIFailure) ?? APIFailure.unreachable(baseURL, error)
            }
        } catch {
            throw APIFailure.unreachable(baseURL, error)
        }
    }

    // MARK: Plumbing

    func url(_ path: String) -> URL { baseURL.appendingPathComponent(path) }

    /// Ids are checked before they reach a path, so a typo is a clear 404-like message, not a strange URL.
    static func checkedID(_ id: String) throws(APIFailure) -> String {
        guard let uuid = UUID(uuidString: id) else {
            throw APIFailure(httpStatus: 404, code: .notFound, message: "'\(id)' is not a video id")
        }
        return uuid.uuidString.lowercased()
    }

    func decode<T: Decodable>(_ data: Data) throws(APIFailure) -> T {
        do { return try Self.decoder.decode(T.self, from: data) } catch {
            throw APIFailure(httpStatus: nil, code: .internalError, message: "unexpected answer from the coordinator: \(error)")
        }
    }

    /// One request; non-2xx answers become ``APIFailure``. With `authorized`, a 401 renews the
    /// access token once (if there is a refresh token) and retries.
    func send(_ method: String, _ url: URL, headers: [String: String] = [:], body: Data? = nil, authorized: Bool = true)
        async throws(APIFailure) -> (Data, HTTPURLResponse)
    {
        let (data, response) = try await sendOnce(method, url, headers: headers, body: body, authorized: authorized)
        if response.statusCode == 401, authorized, try await renew() {
            return try await checked(sendOnce(method, url, headers: headers, body: body, authorized: true))
        }
        return try checked((data, response))
    }

    private func checked(_ answer: (Data, HTTPURLResponse)) throws(APIFailure) -> (Data, HTTPURLResponse) {
        guard (200..<300).contains(answer.1.statusCode) else {
            throw APIFailure.from(status: answer.1.statusCode, body: answer.0,
                                  retryAfter: answer.1.value(forHTTPHeaderField: "Retry-After"))
        }
        return answer
    }

    /// The raw exchange, without status checks (tus needs the 4xx answers' headers).
    func sendOnce(_ method: String, _ url: URL, headers: [String: String], body: Data?, authorized: Bool)
        async throws(APIFailure) -> (Data, HTTPURLResponse)
    {
        var request = URLRequest(url: url)
        request.httpMethod = method
        for (k, v) in headers { request.setValue(v, forHTTPHeaderField: k) }
        if authorized, let token = tokens.withLock({ $0.access }) {
            request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        }
        request.httpBody = body
        let data: Data
        let response: URLResponse
        do { (data, response) = try await session.data(for: request) } catch { throw APIFailure.unreachable(baseURL, error) }
        guard let http = response as? HTTPURLResponse else {
            throw APIFailure(httpStatus: nil, code: .internalError, message: "no HTTP answer from \(baseURL)")
        }
        return (data, http)
    }

    /// Exchanges the refresh token for a new pair; false when there is none or it was refused.
    func renew() async throws(APIFailure) -> Bool {
        guard let refresh = tokens.withLock({ $0.refresh }) else { return false }
        let body = try? JSONSerialization.data(withJSONObject: ["refreshToken": refresh])
        let (data, response) = try await sendOnce("POST", url("auth/refresh"), headers: ["Content-Type": "application/json"],
                                                  body: body, authorized: false)
        guard response.statusCode == 200, let login: Login = try? decode(data) else { return false }
        tokens.withLock { $0 = (login.accessToken, login.refreshToken ?? refresh) }
        onTokens(login.accessToken, login.refreshToken ?? refresh)
        return true
    }

    var accessToken: String? { tokens.withLock { $0.access } }
}
