import Crypto
import FrameCore
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Uploads a file with tus 1.0.0 (`/uploads`), resumably: the upload URL is remembered in the
/// config directory under the file's path, size and modification time, so running the same
/// upload again (after a kill, a network cut, a coordinator restart) asks the server where it
/// stands (HEAD) and sends only the rest.
///
/// Chunks carry a sha1 `Upload-Checksum`. Their size adapts to the link (about a second each,
/// 256 KiB to 32 MiB), so progress stays live on slow links and requests stay few on fast ones.
/// File reads run on a Dispatch queue, never on the cooperative pool.
public struct TusUploader: Sendable {
    public let client: UserClient
    public let store: CredentialStore
    /// Bytes per second to stay under; nil: as fast as the link goes.
    public var limitRate: Int?
    /// Upload metadata besides the file name (job options: fps, format, quality, maxWidth, ...).
    public var metadata: [String: String]

    public init(client: UserClient, store: CredentialStore, limitRate: Int? = nil, metadata: [String: String] = [:]) {
        self.client = client
        self.store = store
        self.limitRate = limitRate
        self.metadata = metadata
    }

    /// Where an upload ended.
    public struct Result: Sendable {
        public var videoID: String
        public var bytes: Int64
        /// The offset it resumed from (0 for a fresh upload).
        public var resumedFrom: Int64
    }

    /// Progress callbacks: bytes acknowledged so far, total, and the offset resumed from.
    public typealias Progress = @Sendable (_ done: Int64, _ total: Int64, _ resumedFrom: Int64) -> Void

    public func upload(_ file: URL, progress: Progress = { _, _, _ in }) async throws(APIFailure) -> Result {
        let (size, modified) = try Self.stat(file)
        let key = "\(client.baseURL.absoluteString)|\(file.standardizedFileURL.path)|\(size)|\(modified)"
        var offset: Int64 = 0
        var location: URL?
        if let remembered = store.loadUploads()[key].flatMap(URL.init(string:)) {
            switch try await head(remembered) {
            case .offset(let at):
                (location, offset) = (remembered, at)
            case .done(let id):
                forget(key)
                progress(size, size, size)
                return Result(videoID: id, bytes: size, resumedFrom: size)
            case .gone:
                forget(key)
            }
        }
        if location == nil {
            location = try await create(file, size: size)
            remember(key, location!)
        }
        let resumedFrom = offset
        progress(offset, size, resumedFrom)
        let reader = try ChunkReader(file)
        defer { reader.close() }
        var chunk = 256 * 1024
        var videoID: String?
        var retries = 0
        while offset < size || (size == 0 && videoID == nil) {
            let length = Int(min(Int64(chunk), size - offset))
            let bytes = try await reader.read(at: offset, count: length)
            let started = Date()
            do throws(APIFailure) {
                let answer = try await patch(location!, offset: offset, bytes)
                offset = answer.offset
                videoID = answer.videoID ?? videoID
                retries = 0
            } catch let failure where failure.httpStatus == nil || failure.httpStatus == 409 || (failure.httpStatus ?? 0) >= 500 {
                // Network cut, server restart, or our idea of the offset is stale: ask, then go on.
                retries += 1
                guard retries <= 5 else { throw failure }
                try? await Task.sleep(for: .milliseconds(200 * (1 << retries)))
                switch try await head(location!) {
                case .offset(let at): offset = at
                case .done(let id): videoID = id; offset = size
                case .gone: forget(key); throw failure
                }
                continue
            } catch {
                if error.httpStatus != nil, error.httpStatus != 429 { forget(key) }
                throw error
            }
            progress(offset, size, resumedFrom)
            let elapsed = Date().timeIntervalSince(started)
            chunk = Self.nextChunk(chunk, elapsed: elapsed, limitRate: limitRate)
            if let limitRate, limitRate > 0 {
                // Stay under the rate: each chunk takes at least its share of a second.
                let minimum = Double(length) / Double(limitRate)
                if minimum > elapsed { try? await Task.sleep(for: .milliseconds(Int64((minimum - elapsed) * 1000))) }
            }
            if size == 0 { break }
        }
        forget(key)
        guard let videoID else {
            // The last 204 did not name the video (another request finished it): HEAD does.
            if case .done(let id) = try await head(location!) { return Result(videoID: id, bytes: size, resumedFrom: resumedFrom) }
            throw APIFailure(httpStatus: nil, code: .internalError, message: "the upload finished but the server named no video")
        }
        return Result(videoID: videoID, bytes: size, resumedFrom: resumedFrom)
    }

    static func nextChunk(_ chunk: Int, elapsed: TimeInterval, limitRate: Int?) -> Int {
        var next = elapsed < 0.5 ? chunk * 2 : (elapsed > 2 ? chunk / 2 : chunk)
        if let limitRate, limitRate > 0 { next = min(next, max(64 * 1024, limitRate / 2)) }
        return min(max(next, 64 * 1024), 32 << 20)
    }

    // MARK: Requests

    enum HeadAnswer { case offset(Int64), done(String), gone }

    static let tusHeaders = ["Tus-Resumable": "1.0.0"]

    func create(_ file: URL, size: Int64) async throws(APIFailure) -> URL {
        var pairs = metadata
        pairs["filename"] = file.lastPathComponent
        let encoded = pairs.sorted { $0.key < $1.key }.map { "\($0.key) \(Data($0.value.utf8).base64EncodedString())" }
            .joined(separator: ",")
        let headers = Self.tusHeaders.merging(["Upload-Length": "\(size)", "Upload-Metadata": encoded]) { $1 }
        let (_, response) = try await client.send("POST", client.url("uploads"), headers: headers)
        guard let location = response.value(forHTTPHeaderField: "Location"),
              let url = URL(string: location, relativeTo: client.baseURL)?.absoluteURL
        else {
            throw APIFailure(httpStatus: response.statusCode, code: .internalError, message: "the server created no upload location")
        }
        return url
    }

    func head(_ url: URL) async throws(APIFailure) -> HeadAnswer {
        let (body, response) = try await client.sendOnce("HEAD", url, headers: Self.tusHeaders, body: nil, authorized: true)
        switch response.statusCode {
        case 200:
            if let id = response.value(forHTTPHeaderField: "FrameFlow-Video-Id") { return .done(id) }
            guard let offset = response.value(forHTTPHeaderField: "Upload-Offset").flatMap(Int64.init) else {
                throw APIFailure(httpStatus: 200, code: .internalError, message: "HEAD gave no Upload-Offset")
            }
            return .offset(offset)
        case 404, 410:
            return .gone
        case 401:
            _ = try await client.send("HEAD", url, headers: Self.tusHeaders)  // renews the token or throws 401
            return try await head(url)
        default:
            var failure = APIFailure.from(status: response.statusCode, body: body, retryAfter: nil)
            if let code = response.value(forHTTPHeaderField: "FrameFlow-Error-Code").flatMap(ErrorCode.init(name:)) {
                failure.code = code
                failure.message = "HTTP \(response.statusCode): the upload was refused (\(code.name))"
            }
            throw failure
        }
    }

    func patch(_ url: URL, offset: Int64, _ bytes: Data) async throws(APIFailure) -> (offset: Int64, videoID: String?) {
        let digest = Data(Insecure.SHA1.hash(data: bytes)).base64EncodedString()
        let headers = Self.tusHeaders.merging([
            "Content-Type": "application/offset+octet-stream", "Upload-Offset": "\(offset)", "Upload-Checksum": "sha1 \(digest)",
        ]) { $1 }
        let (_, response) = try await client.send("PATCH", url, headers: headers, body: bytes)
        guard let next = response.value(forHTTPHeaderField: "Upload-Offset").flatMap(Int64.init) else {
            throw APIFailure(httpStatus: response.statusCode, code: .internalError, message: "PATCH gave no Upload-Offset")
        }
        return (next, response.value(forHTTPHeaderField: "FrameFlow-Video-Id"))
    }

    // MARK: Local state

    func remember(_ key: String, _ url: URL) {
        var uploads = store.loadUploads()
        uploads[key] = url.absoluteString
        try? store.saveUploads(uploads)
    }

    func forget(_ key: String) {
        var uploads = store.loadUploads()
        guard uploads.removeValue(forKey: key) != nil else { return }
        try? store.saveUploads(uploads)
    }

    static func stat(_ file: URL) throws(APIFailure) -> (Int64, Int64) {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: file.path),
              let size = (attributes[.size] as? NSNumber)?.int64Value
        else {
            throw APIFailure(httpStatus: nil, code: .notFound, message: "cannot read \(file.path)")
        }
        let modified = (attributes[.modificationDate] as? Date).map { Int64($0.timeIntervalSince1970 * 1000) } ?? 0
        return (size, modified)
    }
}

/// Reads a file's chunks on a Dispatch queue (blocking reads stay off the cooperative pool).
final class ChunkReader: @unchecked Sendable {
    private let handle: FileHandle
    private let queue = DispatchQueue(label: "frameflow.tus.reader")

    init(_ file: URL) throws(APIFailure) {
        do { handle = try FileHandle(forReadingFrom: file) } catch {
            throw APIFailure(httpStatus: nil, code: .notFound, message: "cannot open \(file.path): \(error.localizedDescription)")
        }
    }

    func read(at offset: Int64, count: Int) async throws(APIFailure) -> Data {
        let handle = self.handle
        let result: Swift.Result<Data, any Error> = await withCheckedContinuation { continuation in
            queue.async {
                continuation.resume(returning: Swift.Result {
                    try handle.seek(toOffset: UInt64(offset))
                    return try handle.read(upToCount: count) ?? Data()
                })
            }
        }
        switch result {
        case .success(let data): return data
        case .failure(let error): throw APIFailure(httpStatus: nil, code: .ioError, message: "cannot read the file: \(error)")
        }
    }

    func close() { queue.sync { try? handle.close() } }
}
