import FrameCore
import FrameStore
import Foundation
import Hummingbird
import Logging

/// `/uploads`: the tus 1.0.0 endpoints (core, creation, creation-with-upload, termination,
/// expiration, checksum with sha1), authenticated like the rest of the API, plus `GET
/// /uploads/{id}` as JSON for clients that are not tus clients.
///
/// Someone else's upload is 404, like someone else's video. An upload that ended is 410
/// (`UPLOAD_EXPIRED`), one whose file was refused answers with the refusal (422 and its media
/// code) on HEAD and PATCH alike, so a client that resumes learns why.
struct TusRoutes {
    let uploads: TusUploads
    let publicBaseURL: String?

    var configuration: APIConfiguration { uploads.configuration }

    /// The JSON view of an upload.
    struct UploadView: ResponseEncodable {
        @LowercaseID var id: UUID
        var filename: String
        var length: Int64
        var offset: Int64
        var state: String
        /// The video (job) the upload became, once it is done.
        @LowercaseOptionalID var videoId: UUID?
        var errorCode: String?
        var errorMessage: String?
        var createdAt: Date
        var expiresAt: Date
    }

    func register(public router: RouterGroup<APIRequestContext>, authenticated: RouterGroup<APIRequestContext>) {
        router.on("", method: .options) { _, _ in capabilities() }
        authenticated.post { request, context in try await create(request, context) }
        authenticated.head(":id") { _, context in try await head(context) }
        authenticated.patch(":id") { request, context in try await patch(request, context) }
        authenticated.delete(":id") { _, context in try await terminate(context) }
        authenticated.get(":id") { _, context in try await view(context) }
    }

    // MARK: Handlers

    func capabilities() -> Response {
        var headers = HTTPFields()
        headers[.tusVersion] = Tus.version
        headers[.tusExtension] = Tus.extensions.joined(separator: ",")
        headers[.tusMaxSize] = String(configuration.maxUploadBytes)
        headers[.tusChecksumAlgorithm] = Tus.checksumAlgorithms.joined(separator: ",")
        return Response(status: .noContent, headers: headers)
    }

    func create(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let owner = try context.requireIdentity()
        if request.headers[.uploadDeferLength] != nil {
            throw APIError(.badRequest, .validationFailed, "Upload-Defer-Length is not supported: send Upload-Length")
        }
        guard let length = try Tus.nonNegative(request.headers[.uploadLength], "Upload-Length") else {
            throw APIError(.badRequest, .validationFailed, "creating an upload needs Upload-Length")
        }
        let withBody = try Self.hasChunkBody(request)
        if withBody, let declared = try Tus.nonNegative(request.headers[.contentLength], "Content-Length"), declared > length {
            throw APIError(.contentTooLarge, .uploadTooLarge, "the body is longer than Upload-Length")
        }
        let checksum = try Tus.checksum(request.headers[.uploadChecksum])
        var record = try await uploads.create(owner: owner.id, length: length, metadataHeader: request.headers[.uploadMetadata])
        var headers = HTTPFields()
        headers[.location] = PublicURL.absolute("/uploads/\(record.id.uuidString.lowercased())", request, configured: publicBaseURL)
        if withBody || length == 0 {
            guard uploads.locks.tryLock(record.id) else { throw Self.busy }
            defer { uploads.locks.unlock(record.id) }
            if withBody { try await uploads.append(&record, body: request.body, checksum: checksum) }
            headers[.uploadOffset] = String(record.received)
            if record.isComplete { headers[.frameflowVideoID] = try await uploads.finish(record).uuidString.lowercased() }
        }
        headers[.uploadExpires] = Tus.httpDate(record.expiresAt)
        return Response(status: .created, headers: headers)
    }

    func head(_ context: APIRequestContext) async throws -> Response {
        var record = try await ownedUpload(context)
        var headers = HTTPFields()
        headers[.cacheControl] = "no-store"
        if record.state == .receiving, record.isComplete, uploads.locks.tryLock(record.id) {
            // All bytes arrived but the job was not recorded (a crash or an outage during the finish): finish now.
            defer { uploads.locks.unlock(record.id) }
            headers[.frameflowVideoID] = try await uploads.finish(record).uuidString.lowercased()
            record.state = .done
        } else if record.state == .done {
            headers[.frameflowVideoID] = record.id.uuidString.lowercased()
        }
        headers[.uploadOffset] = String(record.received)
        headers[.uploadLength] = String(record.length)
        if !record.metadata.isEmpty { headers[.uploadMetadata] = record.metadata }
        if record.state == .receiving { headers[.uploadExpires] = Tus.httpDate(record.expiresAt) }
        return Response(status: .ok, headers: headers)
    }

    func patch(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        guard try Self.hasChunkBody(request) else {
            throw APIError(.unsupportedMediaType, .validationFailed, "PATCH needs Content-Type: \(Tus.chunkContentType)")
        }
        guard let offset = try Tus.nonNegative(request.headers[.uploadOffset], "Upload-Offset") else {
            throw APIError(.badRequest, .validationFailed, "PATCH needs Upload-Offset")
        }
        let checksum = try Tus.checksum(request.headers[.uploadChecksum])
        var record = try await ownedUpload(context)
        guard uploads.locks.tryLock(record.id) else { throw Self.busy }
        defer { uploads.locks.unlock(record.id) }
        // Read again under the lock: a request that just ended may have moved it.
        record = try await ownedUpload(context)
        var headers = HTTPFields()
        if record.state == .done {
            // A client whose final 204 was lost retries the last chunk: tell it where the upload stands.
            guard offset == record.length else { throw Self.offsetMismatch(offset, record) }
            headers[.uploadOffset] = String(record.received)
            headers[.frameflowVideoID] = record.id.uuidString.lowercased()
            return Response(status: .noContent, headers: headers)
        }
        guard offset == record.received else { throw Self.offsetMismatch(offset, record) }
        if let declared = try Tus.nonNegative(request.headers[.contentLength], "Content-Length"), offset + declared > record.length {
            throw APIError(.contentTooLarge, .uploadTooLarge,
                           "the chunk (\(declared) bytes at \(offset)) goes past the upload's length of \(record.length) bytes")
        }
        try await uploads.append(&record, body: request.body, checksum: checksum)
        headers[.uploadOffset] = String(record.received)
        if record.isComplete {
            headers[.frameflowVideoID] = try await uploads.finish(record).uuidString.lowercased()
        } else {
            headers[.uploadExpires] = Tus.httpDate(Date().addingTimeInterval(configuration.tusExpiry.seconds))
        }
        return Response(status: .noContent, headers: headers)
    }

    func terminate(_ context: APIRequestContext) async throws -> Response {
        let record = try await ownedUpload(context, includeEnded: true)
        switch record.state {
        case .expired, .terminated:
            throw Self.gone(record)
        case .receiving, .done, .refused:
            try await uploads.terminate(record)
        }
        return Response(status: .noContent)
    }

    func view(_ context: APIRequestContext) async throws -> UploadView {
        let record = try await ownedUpload(context, includeEnded: true)
        return UploadView(
            id: record.id, filename: record.filename, length: record.length, offset: record.received,
            state: record.state.rawValue, videoId: record.state == .done ? record.id : nil,
            errorCode: record.errorCode?.name, errorMessage: record.errorMessage, createdAt: record.createdAt,
            expiresAt: record.expiresAt)
    }

    // MARK: Helpers

    /// The caller's upload named by `:id`; 404 for a malformed id, a missing upload or someone
    /// else's. Unless `includeEnded`, an ended upload throws its ending (410, or the refusal), and
    /// one past its expiry is expired on the spot (the sweeper may not have come by yet).
    func ownedUpload(_ context: APIRequestContext, includeEnded: Bool = false) async throws -> TusUploadRecord {
        let owner = try context.requireIdentity()
        guard let text = context.parameters.get("id"), let id = UUID(uuidString: text),
              var record = try await uploads.store.get(id: id), record.userID == owner.id
        else {
            throw APIError.notFound("no such upload")
        }
        if record.state == .receiving, !record.isComplete, record.expiresAt <= Date(), uploads.locks.tryLock(id) {
            defer { uploads.locks.unlock(id) }
            if try await uploads.expire(id) { record.state = .expired }
        }
        if includeEnded { return record }
        switch record.state {
        case .receiving, .done: return record
        case .expired, .terminated: throw Self.gone(record)
        case .refused:
            throw APIError.from(FrameFlowError(record.errorCode ?? .notMedia, record.errorMessage ?? "the file was refused"))
        }
    }

    static func gone(_ record: TusUploadRecord) -> APIError {
        APIError(.gone, .uploadExpired, record.state == .expired
                 ? "the upload expired unfinished and its bytes were deleted; start a new upload"
                 : "the upload was deleted")
    }

    static func offsetMismatch(_ offset: Int64, _ record: TusUploadRecord) -> APIError {
        APIError(.conflict, .conflict, "Upload-Offset \(offset) is not the upload's offset \(record.received): HEAD it and resume from there")
    }

    static let busy = APIError(.conflict, .conflict, "another request is writing this upload; retry when it ends")

    /// Whether the request carries a chunk (`Content-Type: application/offset+octet-stream`); any
    /// other body type with a body is 415.
    static func hasChunkBody(_ request: Request) throws -> Bool {
        guard let type = request.headers[.contentType] else { return false }
        let media = type.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        guard media == Tus.chunkContentType else {
            throw APIError(.unsupportedMediaType, .validationFailed, "upload bytes must be sent as \(Tus.chunkContentType)")
        }
        return true
    }
}

/// Wraps every `/uploads` answer in tus's rules: `Tus-Resumable: 1.0.0` on every response (errors
/// included), a request without the version it speaks (except OPTIONS, and the plain JSON GET)
/// refused with 412 and `Tus-Version`, and HEAD errors sent without a body (the code goes in
/// `FrameFlow-Error-Code`).
struct TusMiddleware: RouterMiddleware {
    typealias Context = APIRequestContext
    let logger: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response: Response
        do {
            if request.method != .options, request.method != .get, request.headers[.tusResumable] != Tus.version {
                var error = APIError(.preconditionFailed, .unsupportedVersion,
                                     "this server speaks tus \(Tus.version): send Tus-Resumable: \(Tus.version)")
                error.headers[.tusVersion] = Tus.version
                throw error
            }
            response = try await next(request, context)
        } catch {
            let apiError = APIError.from(error)
            if apiError.status.code >= 500 {
                logger.error("request failed", metadata: [
                    "path": "\(request.uri.path)", "code": "\(apiError.code.name)", "error": "\(error)",
                ])
            }
            if request.method == .head {
                var headers = apiError.headers
                headers[.frameflowErrorCode] = apiError.code.name
                response = Response(status: apiError.status, headers: headers)
            } else {
                response = try apiError.response(from: request, context: context)
            }
        }
        response.headers[.tusResumable] = Tus.version
        return response
    }
}
