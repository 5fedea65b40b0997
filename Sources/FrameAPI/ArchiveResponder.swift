import FrameStore
import Foundation
import Hummingbird
import NIOPosix

/// Answers a download of a job's ZIP from `results/<id>.zip`, streamed from
/// disk in chunks (never loaded whole), with single-range support.
///
/// Shared by the authenticated `/videos/{id}/download` and the signed
/// `/downloads/{id}` link so both behave byte for byte the same.
struct ArchiveResponder {
    let resultsDirectory: URL
    let fileIO: FileIO

    /// 409 before COMPLETED, 410 once EXPIRED; otherwise the archive (200 or 206) or 416.
    func respond(job: JobRecord, request: Request, context: APIRequestContext) async throws -> Response {
        try checkAvailable(job)
        let path = resultsDirectory.appendingPathComponent("\(job.id.uuidString.lowercased()).zip").path
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
              let size = (attributes[.size] as? NSNumber)?.intValue
        else {
            throw APIError(.gone, .invalidJobState, "the archive of this video is no longer available")
        }
        return try await respond(job: job, path: path, size: size, request: request, context: context)
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

    private func respond(job: JobRecord, path: String, size: Int, request: Request, context: APIRequestContext) async throws -> Response {
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
            let body = size == 0 ? ResponseBody() : try await fileIO.loadFile(path: path, range: 0...(size - 1), context: context)
            return Response(status: .ok, headers: headers, body: body)
        case .partial(let range):
            headers[.contentLength] = String(range.count)
            headers[.contentRange] = "bytes \(range.lowerBound)-\(range.upperBound)/\(size)"
            let body = try await fileIO.loadFile(path: path, range: range, context: context)
            return Response(status: .partialContent, headers: headers, body: body)
        }
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
