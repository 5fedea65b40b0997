import FrameAPI
import FrameCore
import FrameStore
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Testing

/// Everything one API test needs: a fresh database, temporary upload and
/// result folders, the server and a running test application.
struct Harness: Sendable {
    let db: Database
    let api: FrameAPIServer
    let root: URL
    var uploads: URL { api.configuration.uploadsDirectory }
    var results: URL { api.configuration.resultsDirectory }
    static let secret = "test-secret-0123456789"

    enum Ingest: Sendable { case plan, notMedia, picky, flakyOnce, leaky }

    /// Runs `body` against a fresh server; `setup` picks `.router` (in-process) or `.live` (real socket).
    static func run(
        _ setup: TestingSetup = .router, ingest: Ingest = .plan, maxUploadBytes: Int64 = 64 * 1024 * 1024,
        idleTimeout: Duration? = FrameAPIServer.defaultIdleTimeout, bodyTimeout: Duration? = FrameAPIServer.defaultBodyTimeout,
        configure: @escaping @Sendable (inout APIConfiguration) -> Void = { _ in },
        archives: (any ArchiveStore)? = nil,
        _ body: @escaping @Sendable (Harness, any TestClientProtocol) async throws -> Void
    ) async throws {
        try await TestDatabase.withFresh { db in
            let root = FileManager.default.temporaryDirectory.appendingPathComponent("ff-api-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: root) }
            let results = root.appendingPathComponent("results")
            try FileManager.default.createDirectory(at: results, withIntermediateDirectories: true)
            let jobs = JobStore(database: db)
            let ingestor: any VideoIngestor = switch ingest {
            case .plan: PlanningIngestor(jobs: jobs)
            case .notMedia: NotMediaIngestor()
            case .picky: PickyIngestor(jobs: jobs)
            case .flakyOnce: FlakyIngestor(jobs: jobs)
            case .leaky: LeakyIngestor()
            }
            var config = APIConfiguration(
                uploadsDirectory: root.appendingPathComponent("uploads"), resultsDirectory: results,
                maxUploadBytes: maxUploadBytes, allowedExtensions: ["mp4", "MOV", "mkv"], jwtSecret: secret,
                bcryptCost: 4)
            configure(&config)
            let api = await FrameAPIServer(
                configuration: config, database: db, ingestor: ingestor, canceller: StoreCanceller(jobs: jobs),
                logger: TestDatabase.logger, archives: archives)
            let router = api.makeRouter()
            router.group("admin").add(middleware: api.adminMiddleware(adminToken: "admin-token"))
                .get("ping") { _, _ in "pong" }
            let app = Application(router: router, server: FrameAPIServer.httpServer(idleTimeout: idleTimeout, bodyTimeout: bodyTimeout), logger: TestDatabase.logger)
            let harness = Harness(db: db, api: api, root: root)
            try await app.test(setup) { client in try await body(harness, client) }
        }
    }

    // MARK: Accounts

    static let password = "Str0ng!pass"

    /// Registers and logs in a fresh user; returns the bearer token and the user's id.
    func user(_ client: some TestClientProtocol, email: String = "u\(UUID().uuidString.prefix(8))@example.com") async throws -> (token: String, id: UUID) {
        let registered = try await client.execute(
            uri: "/auth/register", method: .post, headers: json, body: Self.body(["email": email, "password": Self.password]))
        #expect(registered.status == .created)
        let id = try registered.decode(Registered.self).id
        let login = try await client.execute(
            uri: "/auth/login", method: .post, headers: json, body: Self.body(["email": email, "password": Self.password]))
        #expect(login.status == .ok)
        return (try login.decode(Token.self).accessToken, id)
    }

    var json: HTTPFields { [.contentType: "application/json"] }

    func auth(_ token: String, _ extra: HTTPFields = [:]) -> HTTPFields {
        var fields = extra
        fields[.authorization] = "Bearer \(token)"
        return fields
    }

    static func body(_ object: [String: String]) -> ByteBuffer {
        ByteBuffer(data: try! JSONSerialization.data(withJSONObject: object))
    }

    // MARK: Uploads

    /// Uploads `files` (name, bytes) with `fields` and returns the response.
    func upload(
        _ client: some TestClientProtocol, token: String, files: [(String, [UInt8])], fields: [(String, String)] = [],
        fieldsFirst: Bool = false, query: String = ""
    ) async throws -> TestResponse {
        let multipart = Multipart(files: files, fields: fields, fieldsFirst: fieldsFirst)
        return try await client.execute(
            uri: "/videos" + query, method: .post,
            headers: auth(token, [.contentType: "multipart/form-data; boundary=\(multipart.boundary)"]),
            body: multipart.body)
    }

    /// Uploads one small file and returns the video.
    func video(_ client: some TestClientProtocol, token: String, name: String = "clip.mp4") async throws -> Video {
        let response = try await upload(client, token: token, files: [(name, Array(repeating: 7, count: 1000))])
        #expect(response.status == .created)
        return try response.decode(Video.self)
    }

    /// Forces a job's status (the lease flow that would get it there is not part of the API).
    func setStatus(_ id: UUID, _ status: JobStatus) async throws {
        try await db.withConnection { conn in
            try conn.query("""
                UPDATE jobs SET status = $2, completed_at = CASE WHEN $2 = 'COMPLETED' THEN now() END
                WHERE id = $1::uuid
                """, id, status.rawValue)
        }
    }

    /// Marks a job COMPLETED with an archive of `bytes`.
    func complete(_ id: UUID, bytes: [UInt8]) async throws {
        try Data(bytes).write(to: results.appendingPathComponent("\(id.uuidString.lowercased()).zip"))
        try await setStatus(id, .completed)
    }

    /// Files currently under the uploads folder (recursively).
    func uploadedFiles() -> [String] {
        let e = FileManager.default.enumerator(at: uploads, includingPropertiesForKeys: nil)
        return (e?.allObjects as? [URL] ?? []).map(\.path)
    }
}

/// A multipart/form-data body built in memory (tests only).
struct Multipart {
    let boundary = "----frameflow-test-\(UUID().uuidString)"
    let body: ByteBuffer

    init(files: [(String, [UInt8])], fields: [(String, String)], fieldsFirst: Bool) {
        var buffer = ByteBuffer()
        let boundary = self.boundary
        func field(_ name: String, _ value: String) {
            buffer.writeString("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"\r\n\r\n\(value)\r\n")
        }
        if fieldsFirst { fields.forEach(field) }
        for (name, bytes) in files {
            buffer.writeString("--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"\(name)\"\r\n")
            buffer.writeString("Content-Type: application/octet-stream\r\n\r\n")
            buffer.writeBytes(bytes)
            buffer.writeString("\r\n")
        }
        if !fieldsFirst { fields.forEach(field) }
        buffer.writeString("--\(boundary)--\r\n")
        body = buffer
    }
}

struct Registered: Decodable { var id: UUID; var email: String }
struct Token: Decodable { var accessToken: String; var tokenType: String; var expiresIn: Int }
struct Problem: Decodable { var code: String; var status: Int; var detail: String }
struct Video: Decodable, Sendable {
    var id: UUID
    var originalFilename: String
    var status: String
    var progress: Double
    var frameCount: Int64
    var sizeBytes: Int64
    var fps: String
    var format: String
    var quality: Int
    var maxWidth: Int
    var maxHeight: Int
    var createdAt: Date
    var labels: [String: String]?
}
struct Batch: Decodable { var items: [Video]; var errors: [FileError]? }
struct FileError: Decodable { var filename: String; var code: String }
struct Page: Decodable { var items: [Video]; var page: Int; var size: Int; var totalElements: Int }
struct Link: Decodable { var url: String; var expiresAt: Date }

extension TestResponse {
    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try decoder.decode(T.self, from: Data(body.readableBytesView))
    }

    /// The problem document's `code`, checking the media type on the way.
    var problemCode: String? {
        guard headers[.contentType] == "application/problem+json" else { return nil }
        return try? decode(Problem.self).code
    }
}
