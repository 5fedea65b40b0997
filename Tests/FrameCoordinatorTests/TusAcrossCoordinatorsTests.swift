@testable import FrameAPI
import FrameCore
import FrameStore
import Foundation
import FrameTestSupport
import Hummingbird
import HummingbirdTesting
import HTTPTypes
import Logging
import NIOCore
import Synchronization
import Testing
@testable import FrameCoordinator
@testable import FrameObjectStore

/// A tus upload whose chunks reach different coordinators that share no disk (behind a load
/// balancer): each durable stretch is also a piece in the object store, and a coordinator without
/// a complete local copy rebuilds it from the pieces before it appends or finishes. Without a piece
/// store, a coordinator missing the acknowledged bytes refuses the chunk instead of filling the gap
/// with zeros. Two API servers on one database, each with its own directories, against the real
/// S3-compatible store scripts/test starts.
@Suite(.serialized, .timeLimit(.minutes(4))) struct TusAcrossCoordinatorsTests {
    /// One coordinator's API: its own directories, the shared database and bucket.
    struct Coordinator {
        let api: FrameAPIServer
        let layout: StorageLayout
        let app: Application<RouterResponder<APIRequestContext>>
    }

    /// The bucket's piece store, counting the pieces fetched (each one a download for a rebuild).
    final class CountingPieces: TusPieceStore {
        let store: S3TusPieceStore
        let fetched = Atomic<Int>(0)
        init(_ store: S3TusPieceStore) { self.store = store }
        func store(upload: UUID, file: URL, bytes: Range<Int64>) async throws -> String {
            try await store.store(upload: upload, file: file, bytes: bytes)
        }
        func fetch(key: String, into sink: (ByteBuffer) async throws -> Void) async throws {
            fetched.add(1, ordering: .relaxed)
            try await store.fetch(key: key, into: sink)
        }
        func discard(upload: UUID) async throws { try await store.discard(upload: upload) }
    }

    static func coordinator(
        _ name: String, root: URL, database: Database, client: S3Client?, withPieces: Bool, logger: Logger,
        counting: CountingPieces? = nil
    ) async throws -> Coordinator {
        let dir = root.appendingPathComponent(name)
        let layout = StorageLayout(uploads: dir.appendingPathComponent("uploads"), spool: dir.appendingPathComponent("spool"),
                                   results: dir.appendingPathComponent("results"))
        try layout.prepare()
        let sources: any SourceStore = client.map { S3SourceStore(client: $0, layout: layout, partSize: 5 << 20, logger: logger) }
            ?? LocalSourceStore(layout: layout)
        let pieces: (any TusPieceStore)? = counting
            ?? (withPieces ? client.map { S3TusPieceStore(client: $0, partSize: 5 << 20, threadPool: .singleton) } : nil)
        let api = await FrameAPIServer(
            configuration: APIConfiguration(
                uploadsDirectory: layout.uploads, resultsDirectory: layout.results,
                jwtSecret: "a-secret-that-is-long-enough-for-hs256", bcryptCost: 4),
            database: database, ingestor: MediaIngestor(database: database, segmentSeconds: 2, maxAttempts: 3, sources: sources),
            canceller: UnusedCanceller(), logger: logger, tusPieces: pieces, stagingID: "coordinator-\(name)")
        return Coordinator(api: api, layout: layout, app: Application(router: api.makeRouter(), logger: logger))
    }

    /// A fresh migrated database, a scratch directory and a logger for one test; both go afterwards.
    static func withDatabase(
        _ stem: String, label: String, level: Logger.Level, _ body: (URL, Database, Logger) async throws -> Void
    ) async throws {
        var logger = Logger(label: label)
        logger.logLevel = level
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("\(stem)-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let database = Database(url: try await TestDatabase.create(), logger: logger)
        try await database.migrate()
        do {
            try await body(root, database, logger)
        } catch {
            await database.shutdown()
            throw error
        }
        await database.shutdown()
    }

    static func field(_ name: String) -> HTTPField.Name { HTTPField.Name(name)! }

    static func token(_ client: some TestClientProtocol, _ email: String) async throws -> String {
        let json: HTTPFields = [.contentType: "application/json"]
        let credentials = ByteBuffer(string: #"{"email":"\#(email)","password":"Str0ng!pass"}"#)
        #expect(try await client.execute(uri: "/auth/register", method: .post, headers: json, body: credentials).status == .created)
        let login = try await client.execute(uri: "/auth/login", method: .post, headers: json, body: credentials)
        return try #require(
            (try JSONSerialization.jsonObject(with: Data(login.body.readableBytesView)) as? [String: Any])?["accessToken"] as? String)
    }

    static func tusHeaders(_ token: String) -> HTTPFields {
        [.authorization: "Bearer \(token)", field("Tus-Resumable"): "1.0.0"]
    }

    static func create(_ client: some TestClientProtocol, _ token: String, length: Int) async throws -> (path: String, id: UUID) {
        var headers = tusHeaders(token)
        headers[field("Upload-Length")] = String(length)
        headers[field("Upload-Metadata")] = "filename \(Data("lb.mp4".utf8).base64EncodedString())"
        let created = try await client.execute(uri: "/uploads", method: .post, headers: headers)
        #expect(created.status == .created)
        let path = try #require(created.headers[.location].flatMap(URL.init(string:))).path
        return (path, try #require(UUID(uuidString: URL(fileURLWithPath: path).lastPathComponent)))
    }

    static func patch(_ client: some TestClientProtocol, _ token: String, _ path: String, offset: Int, _ bytes: Data) async throws -> TestResponse {
        var headers = tusHeaders(token)
        headers[.contentType] = "application/offset+octet-stream"
        headers[field("Upload-Offset")] = String(offset)
        return try await client.execute(uri: path, method: .patch, headers: headers, body: ByteBuffer(bytes: bytes))
    }

    static func offset(_ client: some TestClientProtocol, _ token: String, _ path: String) async throws -> String? {
        try await client.execute(uri: path, method: .head, headers: tusHeaders(token)).headers[field("Upload-Offset")]
    }

    @Test func theRebuildRuleNeedsPiecesFromZeroWithoutGaps() {
        func piece(_ bytes: Range<Int64>) -> TusUploadPiece { TusUploadPiece(bytes: bytes, key: "k\(bytes.lowerBound)") }
        #expect(TusPieces.cover([piece(0..<5), piece(5..<9)], upTo: 9))
        #expect(TusPieces.cover([], upTo: 0))
        #expect(!TusPieces.cover([], upTo: 9), "nothing recorded")
        #expect(!TusPieces.cover([piece(0..<5), piece(6..<9)], upTo: 9), "a gap")
        #expect(!TusPieces.cover([piece(1..<9)], upTo: 9), "not from zero")
        #expect(!TusPieces.cover([piece(0..<5)], upTo: 9), "short of the offset")
        #expect(TusPieces.cover([piece(0..<5), piece(5..<9), piece(9..<12)], upTo: 9), "a piece past the offset is not used")
    }

    @Test func chunksSentToDifferentCoordinatorsMakeTheSameSourceAndLeaveNoPieces() async throws {
        guard let client = try await ObjectStorageSourceTests.liveClient("tuslb") else { return }
        try await Self.withDatabase("ff-tuslb", label: "test.tus.lb", level: .error) { root, database, logger in
            let counted = CountingPieces(S3TusPieceStore(client: client, partSize: 5 << 20, threadPool: .singleton))
            let a = try await Self.coordinator("a", root: root, database: database, client: client, withPieces: true, logger: logger,
                                               counting: counted)
            let b = try await Self.coordinator("b", root: root, database: database, client: client, withPieces: true, logger: logger,
                                               counting: counted)
            let video = try Data(contentsOf: try Fixtures.video(seconds: 4, name: "tuslb.mp4"))
            let third = video.count / 3
            let chunks = [video.prefix(third), video.dropFirst(third).prefix(third), video.dropFirst(2 * third)].map { Data($0) }
            let store = TusUploadStore(database: database)

            try await a.app.test(.router) { viaA in
                try await b.app.test(.router) { viaB in
                    let token = try await Self.token(viaA, "lb@example.com")
                    let (path, id) = try await Self.create(viaA, token, length: video.count)
                    // A takes the first chunk, B the second (it has none of the bytes), A the last (B took the one before).
                    #expect(try await Self.patch(viaA, token, path, offset: 0, chunks[0]).status == .noContent)
                    #expect(try await Self.offset(viaB, token, path) == String(chunks[0].count), "B reports the offset A acknowledged")
                    #expect(try await Self.patch(viaB, token, path, offset: chunks[0].count, chunks[1]).status == .noContent)
                    let rebuiltOnB = try Data(contentsOf: URL(fileURLWithPath: b.api.tus.partialPath(id)))
                    #expect(rebuiltOnB == video.prefix(2 * third), "B's copy is A's bytes plus its own chunk")
                    #expect(try await store.get(id: id)?.stagedBy == "coordinator-b")
                    #expect(try await store.pieces(id: id).map(\.bytes) == [0..<Int64(third), Int64(third)..<Int64(2 * third)])
                    let final = try await Self.patch(viaA, token, path, offset: 2 * third, chunks[2])
                    #expect(final.status == .noContent, "\(String(buffer: final.body))")
                    #expect(final.headers[Self.field("FrameFlow-Video-Id")] == id.uuidString.lowercased())
                    // B fetched A's piece, A then fetched both to rebuild; the finish right after reused A's copy.
                    #expect(counted.fetched.load(ordering: .relaxed) == 3, "pieces fetched: each rebuild once, none at the finish")

                    // The job's source in the bucket is the uploaded file, byte for byte.
                    let source = try await client.getObject(ObjectKeys.upload(id, ext: "mp4"))
                    #expect(Data(source.readableBytesView) == video)
                    let job = try #require(try await JobStore(database: database).get(id: id))
                    #expect(job.sizeBytes == Int64(video.count))
                    // The pieces and their rows are gone, and so are both partial files.
                    #expect(try await client.listObjects(prefix: ObjectKeys.tusPieces(id)).objects.isEmpty)
                    #expect(try await store.pieces(id: id).isEmpty)
                    #expect(!FileManager.default.fileExists(atPath: a.api.tus.partialPath(id)))
                    _ = try await b.api.sweepExpiredUploads()
                    #expect(!FileManager.default.fileExists(atPath: b.api.tus.partialPath(id)), "B's stale copy goes with B's sweep")

                }
            }
        }
    }

    @Test func aCompleteUploadIsFinishedByACoordinatorThatHoldsNoneOfIt() async throws {
        guard let client = try await ObjectStorageSourceTests.liveClient("tusfin") else { return }
        try await Self.withDatabase("ff-tusfin", label: "test.tus.fin", level: .error) { root, database, logger in
            let a = try await Self.coordinator("a", root: root, database: database, client: client, withPieces: true, logger: logger)
            let b = try await Self.coordinator("b", root: root, database: database, client: client, withPieces: true, logger: logger)
            let video = try Data(contentsOf: try Fixtures.video(seconds: 4, name: "tusfin.mp4"))
            let store = TusUploadStore(database: database)
            try await a.app.test(.router) { viaA in
                try await b.app.test(.router) { viaB in
                    let token = try await Self.token(viaA, "fin@example.com")
                    let (path, id) = try await Self.create(viaA, token, length: video.count)
                    let record = try #require(try await store.get(id: id))
                    // All bytes durable through A (its piece recorded), then A dies before the job is
                    // committed: what A's append leaves when its finish never ran.
                    let file = URL(fileURLWithPath: a.api.tus.partialPath(id))
                    try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
                    try video.write(to: file)
                    let key = try await S3TusPieceStore(client: client, partSize: 5 << 20, threadPool: .singleton)
                        .store(upload: id, file: file, bytes: 0..<Int64(video.count))
                    #expect(try await store.advance(id: id, from: 0, to: record.length, expiresAt: record.expiresAt,
                                                    stagedBy: "coordinator-a", pieceKey: key))
                    try FileManager.default.removeItem(at: file)
                    // B's HEAD finishes it from the piece.
                    let head = try await viaB.execute(uri: path, method: .head, headers: Self.tusHeaders(token))
                    #expect(head.status == .ok)
                    #expect(head.headers[Self.field("FrameFlow-Video-Id")] == id.uuidString.lowercased())
                    let source = try await client.getObject(ObjectKeys.upload(id, ext: "mp4"))
                    #expect(Data(source.readableBytesView) == video)
                    #expect(try await client.listObjects(prefix: ObjectKeys.tusPieces(id)).objects.isEmpty)
                }
            }
        }
    }

    @Test func aChunkWhilePiecesCannotBeStoredIs503AndAcknowledgesNothing() async throws {
        guard let client = try await ObjectStorageSourceTests.liveClient("tusdown") else { return }
        let proxy = try TCPProxy(targetPort: client.configuration.endpoint.port ?? 80)
        defer { proxy.stop() }
        let through = try ObjectStorageSourceTests.proxied(client, proxy)
        try await Self.withDatabase("ff-tusdown", label: "test.tus.down", level: .critical) { root, database, logger in
            let a = try await Self.coordinator("a", root: root, database: database, client: through, withPieces: true, logger: logger)
            let video = try Data(contentsOf: try Fixtures.video(seconds: 4, name: "tusdown.mp4"))
            let half = video.count / 2
            try await a.app.test(.router) { viaA in
                let token = try await Self.token(viaA, "down@example.com")
                let (path, id) = try await Self.create(viaA, token, length: video.count)
                #expect(try await Self.patch(viaA, token, path, offset: 0, Data(video.prefix(half))).status == .noContent)
                proxy.cut()
                let refused = try await Self.patch(viaA, token, path, offset: half, Data(video.dropFirst(half)))
                #expect(refused.status == .serviceUnavailable)
                #expect(refused.headers[.retryAfter] == "5")
                let problem = try JSONSerialization.jsonObject(with: Data(refused.body.readableBytesView)) as? [String: Any]
                #expect(problem?["code"] as? String == "OBJECT_STORE_UNAVAILABLE")
                #expect(try await Self.offset(viaA, token, path) == String(half), "no byte acknowledged that only this disk holds")
                proxy.resume()
                let resumed = try await Self.patch(viaA, token, path, offset: half, Data(video.dropFirst(half)))
                #expect(resumed.status == .noContent, "\(String(buffer: resumed.body))")
                let source = try await client.getObject(ObjectKeys.upload(id, ext: "mp4"))
                #expect(Data(source.readableBytesView) == video)
                #expect(try await client.listObjects(prefix: ObjectKeys.tusPieces(id)).objects.isEmpty, "the losing attempt's piece goes too")
            }
        }
    }

    @Test func withoutPiecesACoordinatorMissingTheBytesRefusesTheChunkAndWritesNoZeros() async throws {
        try await Self.withDatabase("ff-tusnp", label: "test.tus.nopieces", level: .critical) { root, database, logger in
            let a = try await Self.coordinator("a", root: root, database: database, client: nil, withPieces: false, logger: logger)
            let b = try await Self.coordinator("b", root: root, database: database, client: nil, withPieces: false, logger: logger)
            let video = try Data(contentsOf: try Fixtures.video(seconds: 4, name: "tusnp.mp4"))
            let half = video.count / 2
            try await a.app.test(.router) { viaA in
                try await b.app.test(.router) { viaB in
                    let token = try await Self.token(viaA, "np@example.com")
                    let (path, id) = try await Self.create(viaA, token, length: video.count)
                    #expect(try await Self.patch(viaA, token, path, offset: 0, Data(video.prefix(half))).status == .noContent)
                    let refused = try await Self.patch(viaB, token, path, offset: half, Data(video.dropFirst(half)))
                    #expect(refused.status == .internalServerError)
                    let problem = try JSONSerialization.jsonObject(with: Data(refused.body.readableBytesView)) as? [String: Any]
                    #expect(problem?["code"] as? String == "IO_ERROR")
                    #expect(try await Self.offset(viaA, token, path) == String(half), "nothing more acknowledged")
                    #expect(!FileManager.default.fileExists(atPath: b.api.tus.partialPath(id)), "no zero-filled copy on B")
                    // The coordinator that holds the bytes still finishes the upload.
                    #expect(try await Self.patch(viaA, token, path, offset: half, Data(video.dropFirst(half))).status == .noContent)
                    #expect(try Data(contentsOf: a.layout.input(id, ext: "mp4")) == video)
                }
            }
        }
    }
}
