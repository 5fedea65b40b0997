import Foundation
import Logging
import NIOCore
import NIOHTTP1

/// What HEAD (and a listing) says about an object.
public struct S3ObjectInfo: Sendable, Equatable {
    /// The key without the configured prefix.
    public var key: String
    public var size: Int64
    public var etag: String
}

/// A multipart upload in progress, as ListMultipartUploads reports it.
public struct S3MultipartUploadInfo: Sendable, Equatable {
    /// The key without the configured prefix.
    public var key: String
    public var uploadID: String
    /// When it was started (nil if the store did not say).
    public var initiated: Date?
}

/// One uploaded part of a multipart upload, as CompleteMultipartUpload needs it.
public struct S3CompletedPart: Sendable, Equatable {
    public var partNumber: Int
    public var etag: String
    public init(partNumber: Int, etag: String) {
        self.partNumber = partNumber
        self.etag = etag
    }
}

/// A small client for the S3 REST API: objects (PUT, GET with Range, HEAD, DELETE), multipart
/// uploads (create, upload part, complete, abort), ListObjectsV2 and presigned GET URLs.
///
/// Every request is signed with ``SigV4`` (payloads hashed, so the store checks the bytes it got);
/// keys are given without the configured prefix, which the client adds. Logs name the method,
/// the key and the status, never a credential or a signature.
public struct S3Client: Sendable {
    public let configuration: S3Configuration
    let transport: HTTPTransport
    let signer: SigV4
    let logger: Logger
    /// The clock requests are signed with (tests move it to make presigned URLs expire).
    let now: @Sendable () -> Date

    public init(configuration: S3Configuration, logger: Logger = Logger(label: "frameflow.s3"), now: @escaping @Sendable () -> Date = { Date() }) throws {
        try configuration.validate()
        self.configuration = configuration
        self.transport = try HTTPTransport(host: configuration.connectHost, port: configuration.port, https: configuration.isHTTPS)
        self.signer = SigV4(region: configuration.region)
        self.logger = logger
        self.now = now
    }

    /// The key as stored (with the prefix).
    public func storeKey(_ key: String) -> String { configuration.prefix + key }

    // MARK: Buckets

    /// Creates the bucket; an existing bucket of ours is fine (tests and first start-up).
    public func createBucket() async throws {
        var body = ByteBuffer()
        if configuration.region != "us-east-1" {
            body.writeString("<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LocationConstraint>\(S3XML.escape(configuration.region))</LocationConstraint></CreateBucketConfiguration>")
        }
        do {
            _ = try await request("PUT", key: nil, body: body)
        } catch S3Error.rejected(_, let code, _) where code == "BucketAlreadyOwnedByYou" || code == "BucketAlreadyExists" {
            return
        }
    }

    // MARK: Objects

    /// Stores `body` as `key` in one request (S3 allows up to 5 GiB; FrameFlow uses it for small
    /// objects and ``S3MultipartUpload`` for streams). Returns the ETag.
    @discardableResult
    public func putObject(_ key: String, body: ByteBuffer, contentType: String = "application/octet-stream") async throws -> String {
        let response = try await request("PUT", key: key, headers: [("content-type", contentType)], body: body)
        return response.headers.first(name: "etag") ?? ""
    }

    /// The object's bytes, or those of `range` (inclusive offsets, as HTTP's Range), at most
    /// `limit` bytes in memory.
    public func getObject(_ key: String, range: ClosedRange<Int64>? = nil, limit: Int = 64 << 20) async throws -> ByteBuffer {
        try await streamObject(key, range: range, timeout: configuration.requestTimeout) { _, body in
            try await body.collect(upTo: limit)
        }
    }

    /// Streams the object (or `range`) through `consume`, which gets the object's total size
    /// (from Content-Length or Content-Range) and reads the body at its own pace.
    public func streamObject<T: Sendable>(
        _ key: String, range: ClosedRange<Int64>? = nil, timeout: Duration? = nil,
        _ consume: (_ totalSize: Int64?, inout ResponseBody) async throws -> T
    ) async throws -> T {
        var headers: [(String, String)] = []
        if let range { headers.append(("range", "bytes=\(range.lowerBound)-\(range.upperBound)")) }
        let (head, target) = signedHead("GET", key: key, headers: headers, payloadHash: SigV4.emptyPayloadHash, bodyLength: 0)
        _ = target
        return try await transport.execute(head: head, body: nil) { response, body in
            let status = Int(response.status.code)
            guard status == 200 || status == 206 else {
                let text = String(buffer: try await body.collect(upTo: 64 << 10))
                logger.debug("s3 GET refused", metadata: ["key": "\(key)", "status": "\(status)"])
                throw S3Error.from(status: status, body: text, key: key)
            }
            if range != nil && status == 200 {
                // A store that ignores Range would hand back the whole object as if it were the range.
                throw S3Error.invalidResponse("asked for a range, got the whole object (HTTP 200)")
            }
            var total: Int64?
            if let contentRange = response.headers.first(name: "content-range"), let slash = contentRange.lastIndex(of: "/") {
                total = Int64(contentRange[contentRange.index(after: slash)...])
            } else if let length = response.headers.first(name: "content-length") {
                total = Int64(length)
            }
            return try await consume(total, &body)
        }
    }

    /// What the store knows of `key`, or nil when there is no such object.
    public func headObject(_ key: String) async throws -> S3ObjectInfo? {
        do {
            let response = try await request("HEAD", key: key)
            let size = Int64(response.headers.first(name: "content-length") ?? "") ?? 0
            return S3ObjectInfo(key: key, size: size, etag: response.headers.first(name: "etag") ?? "")
        } catch S3Error.notFound {
            return nil
        }
    }

    /// Deletes `key`; deleting a key that does not exist succeeds (S3 answers 204 either way).
    public func deleteObject(_ key: String) async throws {
        do {
            _ = try await request("DELETE", key: key)
        } catch S3Error.notFound {
            return
        }
    }

    /// One page of ListObjectsV2 under `prefix` (relative to the configured prefix): the objects
    /// and the token for the next page, nil on the last page.
    public func listObjects(prefix: String = "", continuationToken: String? = nil, maxKeys: Int = 1000) async throws -> (objects: [S3ObjectInfo], next: String?) {
        var query: [(name: String, value: String)] = [
            (name: "list-type", value: "2"), (name: "prefix", value: storeKey(prefix)), (name: "max-keys", value: String(maxKeys)),
        ]
        if let continuationToken { query.append((name: "continuation-token", value: continuationToken)) }
        let response = try await request("GET", key: nil, query: query, collect: 16 << 20)
        let xml = String(buffer: response.body)
        let strip = configuration.prefix.count
        let objects = S3XML.elements("Contents", in: xml).compactMap { item -> S3ObjectInfo? in
            guard let key = S3XML.firstValue(of: "Key", in: item) else { return nil }
            return S3ObjectInfo(
                key: String(key.dropFirst(strip)), size: Int64(S3XML.firstValue(of: "Size", in: item) ?? "") ?? 0,
                etag: S3XML.firstValue(of: "ETag", in: item) ?? "")
        }
        let truncated = S3XML.firstValue(of: "IsTruncated", in: xml) == "true"
        return (objects, truncated ? S3XML.firstValue(of: "NextContinuationToken", in: xml) : nil)
    }

    // MARK: Multipart uploads

    /// Starts a multipart upload of `key`; returns its upload id.
    public func createMultipartUpload(_ key: String, contentType: String = "application/octet-stream") async throws -> String {
        let response = try await request("POST", key: key, query: [(name: "uploads", value: "")], headers: [("content-type", contentType)])
        guard let id = S3XML.firstValue(of: "UploadId", in: String(buffer: response.body)), !id.isEmpty else {
            throw S3Error.invalidResponse("InitiateMultipartUpload without an UploadId")
        }
        return id
    }

    /// Uploads part `partNumber` (1...10000; every part but the last at least 5 MiB); returns its ETag.
    public func uploadPart(_ key: String, uploadID: String, partNumber: Int, body: ByteBuffer) async throws -> String {
        let response = try await request(
            "PUT", key: key, query: [(name: "partNumber", value: String(partNumber)), (name: "uploadId", value: uploadID)], body: body)
        guard let etag = response.headers.first(name: "etag") else { throw S3Error.invalidResponse("UploadPart without an ETag") }
        return etag
    }

    /// Makes part `partNumber` of the upload a server-side copy of `source` (a key of this bucket,
    /// without the prefix), or of the inclusive byte `range` of it (`x-amz-copy-source-range`): the
    /// store copies the bytes, none pass through this process. Returns the part's ETag. The same
    /// 5 MiB minimum holds for every part but the last.
    public func uploadPartCopy(
        _ key: String, uploadID: String, partNumber: Int, source: String, range: ClosedRange<Int64>? = nil
    ) async throws -> String {
        let sourcePath = SigV4.canonicalURI("/" + configuration.bucket + "/" + storeKey(source))
        var headers: [(String, String)] = [("x-amz-copy-source", sourcePath)]
        if let range { headers.append(("x-amz-copy-source-range", "bytes=\(range.lowerBound)-\(range.upperBound)")) }
        let response = try await request(
            "PUT", key: key, query: [(name: "partNumber", value: String(partNumber)), (name: "uploadId", value: uploadID)],
            headers: headers)
        // Like CompleteMultipartUpload, a copy may answer 200 and fail in the body.
        let text = String(buffer: response.body)
        if text.contains("<Error>") { throw S3Error.from(status: 500, body: text, key: source) }
        guard let etag = S3XML.firstValue(of: "ETag", in: text), !etag.isEmpty else {
            throw S3Error.invalidResponse("UploadPartCopy without an ETag")
        }
        return etag
    }

    /// Assembles the parts into the object. Only after this returns is the object there.
    public func completeMultipartUpload(_ key: String, uploadID: String, parts: [S3CompletedPart]) async throws {
        var xml = "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
        for part in parts.sorted(by: { $0.partNumber < $1.partNumber }) {
            xml += "<Part><PartNumber>\(part.partNumber)</PartNumber><ETag>\(S3XML.escape(part.etag))</ETag></Part>"
        }
        xml += "</CompleteMultipartUpload>"
        let response = try await request(
            "POST", key: key, query: [(name: "uploadId", value: uploadID)], headers: [("content-type", "application/xml")],
            body: ByteBuffer(string: xml))
        // S3 may answer 200 and still fail: the error comes in the body (after keep-alive spaces).
        let text = String(buffer: response.body)
        if text.contains("<Error>") { throw S3Error.from(status: 500, body: text, key: key) }
    }

    /// Abandons a multipart upload and frees its parts; an upload already gone is fine.
    public func abortMultipartUpload(_ key: String, uploadID: String) async throws {
        do {
            _ = try await request("DELETE", key: key, query: [(name: "uploadId", value: uploadID)])
        } catch S3Error.notFound {
            return
        }
    }

    /// The multipart uploads under `prefix` (relative to the configured prefix) that were started
    /// and neither completed nor aborted: what an interrupted upload may leave behind (its parts
    /// cost storage until aborted). One page of up to 1000, which is all a sweep needs per pass.
    public func listMultipartUploads(prefix: String = "") async throws -> [S3MultipartUploadInfo] {
        let response = try await request(
            "GET", key: nil, query: [(name: "uploads", value: ""), (name: "prefix", value: storeKey(prefix))], collect: 16 << 20)
        let xml = String(buffer: response.body)
        let strip = configuration.prefix.count
        return S3XML.elements("Upload", in: xml).compactMap { item -> S3MultipartUploadInfo? in
            guard let key = S3XML.firstValue(of: "Key", in: item), let id = S3XML.firstValue(of: "UploadId", in: item) else { return nil }
            let initiated = S3XML.firstValue(of: "Initiated", in: item).flatMap(Self.parseISO8601)
            return S3MultipartUploadInfo(key: String(key.dropFirst(strip)), uploadID: id, initiated: initiated)
        }
    }

    /// S3's timestamps (`2026-12-01T15:12:35.000Z`, with or without the fraction).
    static func parseISO8601(_ text: String) -> Date? {
        let withFraction = ISO8601DateFormatter()
        withFraction.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = withFraction.date(from: text) { return date }
        return ISO8601DateFormatter().date(from: text)
    }

    // MARK: Presigned URLs

    /// A URL anyone can GET `key` with until `expires` seconds from now, without credentials.
    /// `downloadName` sets the Content-Disposition the store answers with (a file name for browsers).
    public func presignedGetURL(_ key: String, expires: Int, downloadName: String? = nil) -> URL {
        var query: [(name: String, value: String)] = []
        if let downloadName {
            let safe = downloadName.filter { $0 != "\"" && $0 != "\\" && !$0.isNewline }
            query.append((name: "response-content-disposition", value: "attachment; filename=\"\(safe)\""))
        }
        let path = configuration.path(forStoreKey: storeKey(key))
        let request = SigV4Request(method: "GET", path: path, query: query, headers: [(name: "host", value: configuration.hostHeader)])
        let signed = signer.presign(request, expires: expires, credentials: configuration.credentials, date: now())
        let scheme = configuration.isHTTPS ? "https" : "http"
        return URL(string: "\(scheme)://\(configuration.hostHeader)\(SigV4.canonicalURI(path))?\(signed.presignedQuery)")!
    }

    // MARK: Plumbing

    struct Response: Sendable {
        var status: Int
        var headers: HTTPHeaders
        var body: ByteBuffer
    }

    /// The signed head for a request on `key` (nil: the bucket itself).
    func signedHead(
        _ method: String, key: String?, query: [(name: String, value: String)] = [], headers extra: [(String, String)] = [],
        payloadHash: String, bodyLength: Int
    ) -> (HTTPRequestHead, String) {
        let path = configuration.path(forStoreKey: key.map(storeKey))
        var headers: [(name: String, value: String)] = [
            (name: "host", value: configuration.hostHeader), (name: "x-amz-content-sha256", value: payloadHash),
        ]
        for (name, value) in extra { headers.append((name: name, value: value)) }
        let request = SigV4Request(method: method, path: path, query: query, headers: headers)
        // One reading of the clock: the x-amz-date sent must be the one signed (two readings
        // straddling a second boundary made the store answer SignatureDoesNotMatch now and then).
        let date = now()
        let signed = signer.sign(request, payloadHash: payloadHash, credentials: configuration.credentials, date: date)
        let target = SigV4.encodedTarget(path: path, query: query)
        var head = HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: method), uri: target)
        for (name, value) in headers { head.headers.add(name: name, value: value) }
        if !headers.contains(where: { $0.name == "x-amz-date" }) {
            head.headers.add(name: "x-amz-date", value: SigV4.timestamp(date).full)
        }
        if let token = configuration.credentials.sessionToken { head.headers.add(name: "x-amz-security-token", value: token) }
        head.headers.add(name: "authorization", value: signed.authorization)
        if method != "GET" && method != "HEAD" { head.headers.add(name: "content-length", value: String(bodyLength)) }
        head.headers.add(name: "connection", value: "close")
        head.headers.add(name: "user-agent", value: "FrameFlow/1")
        return (head, target)
    }

    /// How many times a request is sent when the store does not answer it (a reset or refused
    /// connection) or answers 5xx: S3 endpoints drop a connection now and then under load, and
    /// every request FrameFlow sends may be repeated (PUT, part uploads and copies, DELETE, GET,
    /// HEAD, list; a repeated CreateMultipartUpload leaves an upload the sweep aborts, a repeated
    /// CompleteMultipartUpload of one that completed answers NoSuchUpload and the caller redoes it).
    static let attempts = 3

    /// About 100 ms, then 400 ms, with jitter so that many callers do not retry in step.
    static func retryDelay(after attempt: Int) -> Duration {
        let base = 100 * (1 << (2 * (attempt - 1)))
        return .milliseconds(base / 2 + Int.random(in: 0...base))
    }

    /// One request with a small answer (at most `collect` bytes), mapped to an `S3Error` unless 2xx.
    func request(
        _ method: String, key: String?, query: [(name: String, value: String)] = [], headers: [(String, String)] = [],
        body: ByteBuffer = ByteBuffer(), collect: Int = 1 << 20
    ) async throws -> Response {
        let payloadHash = body.withUnsafeReadableBytes { SigV4.sha256Hex($0) }
        let (head, _) = signedHead(method, key: key, query: query, headers: headers, payloadHash: payloadHash, bodyLength: body.readableBytes)
        let transport = self.transport
        let logger = self.logger
        let what = "\(method) \(key ?? "(bucket)")"
        // The retries stay inside the request's time limit: a store that hangs is not asked again.
        let response = try await withTimeout(configuration.requestTimeout, "object store \(what)") {
            var attempt = 1
            while true {
                do {
                    let response = try await transport.execute(head: head, body: body) { response, reader in
                        Response(status: Int(response.status.code), headers: response.headers, body: try await reader.collect(upTo: collect))
                    }
                    guard response.status >= 500, attempt < Self.attempts else { return response }
                    logger.debug("s3 request answered \(response.status); retrying", metadata: ["request": "\(what)", "attempt": "\(attempt)"])
                } catch S3Error.unavailable(let why) where attempt < Self.attempts && !Task.isCancelled {
                    logger.debug("s3 request failed; retrying", metadata: ["request": "\(what)", "attempt": "\(attempt)", "error": "\(why)"])
                }
                try await Task.sleep(for: Self.retryDelay(after: attempt))
                attempt += 1
            }
        }
        logger.trace("s3 request", metadata: ["request": "\(what)", "status": "\(response.status)"])
        guard (200..<300).contains(response.status) else {
            throw S3Error.from(status: response.status, body: String(buffer: response.body), key: key ?? "")
        }
        return response
    }
}
