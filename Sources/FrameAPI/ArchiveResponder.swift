import FrameStore
import Foundation
import Hummingbird
import NIOPosix

/// Answers a download of a job's ZIP from wherever the ``ArchiveStore`` keeps it: streamed from
/// disk in chunks (never loaded whole) with single-range support, a redirect to a presigned
/// object-store URL (which honours Range itself), or streamed through from the object store.
///
/// Shared by the authenticated `/videos/{id}/download` and the signed
/// `/downloads/{id}` link so both behave byte for byte the same.
struct ArchiveResponder {
    let store: any ArchiveStore
    let fileIO: FileIO

    /// 409 before COMPLETED, 410 once EXPIRED; otherwise the archive (200 or 206, or a 302 to the
    /// object store) or 416.
    func respond(job: JobRecord, request: Request, context: APIRequestContext) async throws -> Response {
        try checkAvailable(job)
        let location: ArchiveLocation
        do {
            location = try await store.locate(job: job.id, downloadName: Self.fileName(for: job.originalFilename))
        } catch {
            throw APIError.from(error)
        }
        switch location {
        case .missing:
            throw APIError(.gone, .invalidJobState, "the archive of this video is no longer available")
        case .redirect(let url):
            var headers = HTTPFields()
            headers[.location] = url.absoluteString
            headers[.cacheControl] = "no-store"
            return Response(status: .found, headers: headers)
        case .file(let path, let size):
            return try await respond(job: job, size: size, request: request, context: context) { range in
                try await fileIO.loadFile(path: path, range: range, context: context)
            }
        case .stream(let size, let read):
            return try await respond(job: job, size: size, request: request, context: context) { range in
                ResponseBody(contentLength: range.count) { writer in
                    try await read(range) { piece in try await writer.write(piece) }
                    try await writer.finish(nil)
                }
            }
        }
    }

    /// 409 before COMPLETED, 410 once EXPIRED (checked before a download is counted).
    func checkAvailable(_ job: JobRecord) throws {
        switch job.status {
        case .completed:
            break
        case .expired:
            throw APIError(.gone, .invalidJobState, "the frames of this video have expired and were deleted")
        default:
            throw APIError(.conflict, .invalidJobState, "the video is \(job.status.rawValue); its frames can be downloaded once it is COMPLETED")
        }
    }

    private func respond(
        job: JobRecord, size: Int, request: Request, context: APIRequestContext, body: (ClosedRange<Int>) async throws -> ResponseBody
    ) async throws -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/zip"
        headers[.acceptRanges] = "bytes"
        headers[.contentDisposition] = Self.attachment(for: job.originalFilename)
        switch ByteRange.resolve(request.headers[.range], size: size) {
        case .unsatisfiable:
            headers[.contentRange] = "bytes */\(size)"
            var problemHeaders = headers
            problemHeaders[.contentType] = "application/problem+json"
            problemHeaders[.contentDisposition] = nil
            let error = APIError(.rangeNotSatisfiable, .validationFailed, "the requested range is outside the \(size)-byte archive")
            let response = try error.response(from: request, context: context)
            return Response(status: response.status, headers: problemHeaders, body: response.body)
        case .whole:
            headers[.contentLength] = String(size)
            return Response(status: .ok, headers: headers, body: size == 0 ? ResponseBody() : try await body(0...(size - 1)))
        case .partial(let range):
            headers[.contentLength] = String(range.count)
            headers[.contentRange] = "bytes \(range.lowerBound)-\(range.upperBound)/\(size)"
            return Response(status: .partialContent, headers: headers, body: try await body(range))
        }
    }

    /// `<stem>-frames.zip`, the name a download is saved under.
    static func fileName(for originalFilename: String) -> String {
        let stem = (originalFilename as NSString).deletingPathExtension
        return (stem.isEmpty ? "video" : stem) + "-frames.zip"
    }

    /// `attachment; filename="<stem>-frames.zip"`, with characters that would break the quoted string replaced,
    /// plus an RFC 8187 `filename*` for names that are not plain ASCII.
    static func attachment(for originalFilename: String) -> String {
        let stem = (originalFilename as NSString).deletingPathExtension
        let name = (stem.isEmpty ? "video" : stem) + "-frames.zip"
        let ascii = String(name.unicodeScalars.map { s -> Character in
            (s.isASCII && s.value >= 0x20 && s != "\"" && s != "\\" && s.value != 0x7F) ? Character(s) : "_"
        })
        if ascii == name { return "attachment; filename=\"\(name)\"" }
        let encoded = name.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? ascii
        return "attachment; filename=\"\(ascii)\"; filename*=UTF-8''\(encoded)"
    }
}
