import FrameCore
import FrameStore
import Foundation
import Hummingbird
import Logging

/// `/videos` (authenticated) and `/downloads/{id}` (signed link): upload,
/// list, show, cancel and download a user's videos.
///
/// Every look-up goes through ``ownedJob(_:_:)``: another user's video is
/// answered exactly like a missing one (404), so ids cannot be probed.
struct VideoRoutes {
    let jobs: JobStore
    let ingestor: any VideoIngestor
    let canceller: any JobCanceller
    let receiver: UploadReceiver
    /// Uploads in flight per user, counted with the committed jobs against `quota`.
    let ledger: UploadLedger
    let quota: UploadQuota
    let archives: ArchiveResponder
    let links: SignedLinks
    let publicBaseURL: String?
    let gate: DownloadGate
    let logger: Logger

    struct DownloadURL: ResponseEncodable { var url: String; var expiresAt: Date }
    /// The dialect's shape of a download link (`GET /jobs/{id}/download`): snake_case, seconds to live.
    struct DialectDownloadURL: ResponseEncodable {
        var download_url: String
        var expires_in: Int
    }

    func register(authenticated videos: RouterGroup<APIRequestContext>, downloads: RouterGroup<APIRequestContext>) {
        videos.post { request, context in try await upload(request, context) }
        videos.post("upload") { request, context in try await upload(request, context) }
        videos.get { request, context in try await list(request, context) }
        videos.get(":id") { _, context in VideoResponse(try await ownedJob(context)) }
        videos.delete(":id") { _, context in try await cancel(context) }
        videos.get(":id/download") { request, context in try await download(request, context) }
        videos.get(":id/download-url") { request, context in
            let (url, expiresAt) = try await downloadURL(request, context)
            return DownloadURL(url: url, expiresAt: expiresAt)
        }
        downloads.get(":id") { request, context in try await signedDownload(request, context) }
    }

    /// The other implementations' routes, as aliases over the same handlers: `GET
    /// /jobs/{id}/status` (the video), `GET /jobs/{id}/download` (`{download_url, expires_in}`).
    func register(dialect jobs: RouterGroup<APIRequestContext>) {
        jobs.get(":id/status") { _, context in VideoResponse(try await ownedJob(context)) }
        jobs.get(":id/download") { request, context in
            let (url, expiresAt) = try await downloadURL(request, context)
            return DialectDownloadURL(download_url: url, expires_in: max(0, Int(expiresAt.timeIntervalSinceNow.rounded())))
        }
    }

    // MARK: Upload

    func upload(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let owner = try context.requireIdentity()
        let query = Dictionary(request.uri.queryParameters.map { (String($0.key), String($0.value)) }, uniquingKeysWith: { $1 })
        let clock = ContinuousClock()
        let started = clock.now
        var reservation = UploadReservation(
            ledger: ledger, user: owner.id, committed: try await jobs.usage(userID: owner.id), quota: quota)
        // Held until the jobs are committed (then the database counts them) or refused.
        defer { reservation.release() }
        let received = try await receiver.receive(request, query: query, reservation: &reservation)
        let receiveTime = clock.now - started
        var accepted: [VideoResponse] = []
        var refused: [(StoredUpload, APIError)] = []
        for upload in received.uploads {
            do {
                let ingestStart = clock.now
                let job = try await ingestor.ingest(upload, owner: owner.id, options: received.options)
                accepted.append(VideoResponse(job))
                // One line per accepted upload with where its time went: network, disk, probe.
                logger.notice("upload accepted", metadata: [
                    "job": "\(upload.jobID)", "user": "\(owner.id)", "bytes": "\(upload.sizeBytes)",
                    "receive_ms": "\(receiveTime.milliseconds)", "fsync_ms": "\(received.syncTime.milliseconds)",
                    "ingest_ms": "\((clock.now - ingestStart).milliseconds)", "files_in_request": "\(received.uploads.count)",
                ])
            } catch {
                let apiError = APIError.from(error)
                logger.info("upload refused", metadata: [
                    "job": "\(upload.jobID)", "file": "\(upload.originalFilename)", "code": "\(apiError.code.name)",
                ])
                receiver.remove(upload)
                refused.append((upload, apiError))
            }
        }
        // Nothing accepted: answer the (first) refusal itself, so a single bad file is a plain 422.
        if accepted.isEmpty, let (_, error) = refused.first { throw error }
        if received.uploads.count == 1 {
            return try EditedResponse(status: .created, response: accepted[0]).response(from: request, context: context)
        }
        let errors = refused.map { upload, error in
            VideoBatchResponse.FileError(filename: upload.originalFilename, code: error.code.name, detail: error.detail)
        }
        let batch = VideoBatchResponse(items: accepted, errors: errors.isEmpty ? nil : errors)
        return try EditedResponse(status: .created, response: batch).response(from: request, context: context)
    }

    // MARK: List, show, cancel

    func list(_ request: Request, _ context: APIRequestContext) async throws -> VideoPage {
        let owner = try context.requireIdentity()
        let params = request.uri.queryParameters
        var status: JobStatus?
        if let text = params["status"].map(String.init), !text.isEmpty {
            guard let s = JobStatus(rawValue: text.uppercased()) else {
                throw APIError.validation("status must be one of \(JobStatus.allCases.map(\.rawValue).joined(separator: ", ")), got '\(text)'")
            }
            status = s
        }
        let page = try Self.integer(params["page"], name: "page", default: 0, range: 0...1_000_000)
        // `limit` is the other implementations' name for `size`; both at once must agree.
        let size = try Self.integer(params["size"], name: "size", default: 20, range: 1...100)
        let limit = try Self.integer(params["limit"], name: "limit", default: size, range: 1...100)
        if params["size"] != nil, params["limit"] != nil, size != limit {
            throw APIError.validation("size and limit name the same thing; got size=\(size) and limit=\(limit)")
        }
        async let items = jobs.list(userID: owner.id, status: status, limit: limit, offset: page * limit)
        async let total = jobs.count(userID: owner.id, status: status)
        let (found, count) = (try await items, try await total)
        // A page past the last one is an error, not an empty page that looks like "no videos".
        let pages = (count + limit - 1) / limit
        if page > 0, page >= pages {
            throw APIError.validation(
                "page \(page) does not exist: \(count) videos make \(pages) page\(pages == 1 ? "" : "s") of \(limit) (pages count from 0)")
        }
        return VideoPage(items: found.map(VideoResponse.init), page: page, size: limit, totalElements: count)
    }

    static func integer(_ value: Substring?, name: String, default fallback: Int, range: ClosedRange<Int>) throws -> Int {
        guard let value, !value.isEmpty else { return fallback }
        guard let n = Int(value), range.contains(n) else {
            throw APIError.validation("\(name) must be an integer from \(range.lowerBound) to \(range.upperBound), got '\(value)'")
        }
        return n
    }

    func cancel(_ context: APIRequestContext) async throws -> VideoResponse {
        let job = try await ownedJob(context)
        guard job.status.isSchedulable else {
            throw APIError(.conflict, .invalidJobState, "the video is \(job.status.rawValue) and can no longer be cancelled")
        }
        do {
            return VideoResponse(try await canceller.cancel(jobID: job.id))
        } catch {
            throw APIError.from(error)
        }
    }

    // MARK: Downloads

    /// The ZIP with an access token: audited, counted against the caller's download limit.
    func download(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let job = try await ownedJob(context)
        try archives.checkAvailable(job)
        try await gate.admit(user: job.userID, job: job.id, kind: .archive, request: request, context: context)
        return try await archives.respond(job: job, request: request, context: context)
    }

    /// An absolute signed link (the configured public base URL, else the request's scheme and host)
    /// and when it stops working; the issue is audited.
    func downloadURL(_ request: Request, _ context: APIRequestContext) async throws -> (String, Date) {
        let job = try await ownedJob(context)
        switch job.status {
        case .completed: break
        case .expired: throw APIError(.gone, .invalidJobState, "the frames of this video have expired and were deleted")
        default: throw APIError(.conflict, .invalidJobState, "the video is \(job.status.rawValue); a link is available once it is COMPLETED")
        }
        try await gate.admit(user: job.userID, job: job.id, kind: .link, request: request, context: context)
        let (path, expiresAt) = links.link(for: job.id)
        return (PublicURL.absolute(path, request, configured: publicBaseURL), expiresAt)
    }

    func signedDownload(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let params = request.uri.queryParameters
        guard let idText = context.parameters.get("id"), let id = UUID(uuidString: idText),
              let expires = params["expires"].flatMap({ Int64($0) }),
              let signature = params["signature"].map(String.init),
              links.isValid(id: id, expires: expires, signature: signature)
        else {
            throw APIError.forbidden("the download link is invalid or has expired")
        }
        guard let job = try await jobs.get(id: id) else { throw APIError.notFound("no such video") }
        try archives.checkAvailable(job)
        try await gate.admit(user: job.userID, job: job.id, kind: .signedArchive, request: request, context: context)
        return try await archives.respond(job: job, request: request, context: context)
    }

    // MARK: Helpers

    /// The caller's job named by the `:id` parameter; 404 for a malformed id, a missing job or someone else's.
    func ownedJob(_ context: APIRequestContext) async throws -> JobRecord {
        let owner = try context.requireIdentity()
        guard let text = context.parameters.get("id"), let id = UUID(uuidString: text),
              let job = try await jobs.get(id: id), job.userID == owner.id
        else {
            throw APIError.notFound("no such video")
        }
        return job
    }
}
