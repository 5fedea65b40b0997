import FrameArchive
import FrameCore
import FrameStore
import Foundation
import Hummingbird
import NIOCore
import NIOPosix

/// `/videos/{id}/frames` and `/videos/{id}/frames/{index}`: a finished job's manifest and one
/// of its frames, read from the result ZIP without unpacking it (``ArchiveReader``).
///
/// Frames are served as stored, not rescaled: they were encoded at the size the user asked
/// for (`maxWidth`), a browser scales an image for a thumbnail for free, and rescaling here
/// would need FFmpeg in the API process and a decode and encode per request. What keeps a
/// thumbnail strip cheap is that the page asks for a dozen frames, not all of them, and that
/// a completed job's frames never change (long-lived private caching with an ETag).
struct FrameRoutes {
    let jobs: JobStore
    let resultsDirectory: URL
    let threadPool: NIOThreadPool

    func register(_ videos: RouterGroup<APIRequestContext>) {
        videos.get(":id/frames") { request, context in
            let (job, zip) = try await completedJob(context)
            let bytes = try await read("manifest.json", zip)
            return try cached(request, etag: "\"\(job.id.uuidString.lowercased())-manifest\"", type: "application/json", bytes: bytes)
        }
        videos.get(":id/frames/:index") { request, context in
            let (job, zip) = try await completedJob(context)
            guard let index = Int(context.parameters.get("index") ?? ""), index >= 0, index < job.frameCount else {
                throw APIError.notFound("no such frame: the index runs from 0 to \(max(job.frameCount - 1, 0))")
            }
            let name = FrameNaming.name(sampleIndex: index, total: Int(job.frameCount), format: job.output.format)
            let bytes = try await read(name, zip)
            let type = job.output.format == .png ? "image/png" : "image/jpeg"
            return try cached(request, etag: "\"\(job.id.uuidString.lowercased())-\(index)\"", type: type, bytes: bytes)
        }
    }

    func completedJob(_ context: APIRequestContext) async throws -> (JobRecord, URL) {
        let owner = try context.requireIdentity()
        // Someone else's job is answered like a missing one, as everywhere in /videos.
        guard let text = context.parameters.get("id"), let id = UUID(uuidString: text),
              let job = try await jobs.get(id: id), job.userID == owner.id
        else { throw APIError.notFound("no such video") }
        guard job.status == .completed else {
            throw APIError(.conflict, .invalidJobState, "frames are available once the video is COMPLETED (it is \(job.status.rawValue))")
        }
        return (job, resultsDirectory.appendingPathComponent("\(job.id.uuidString.lowercased()).zip"))
    }

    func read(_ name: String, _ zip: URL) async throws -> [UInt8] {
        let entry = try await threadPool.runIfActive { try ArchiveReader.entry(named: name, in: zip) }
        guard let entry else { throw APIError.notFound("the archive has no \(name)") }
        return entry
    }

    func cached(_ request: Request, etag: String, type: String, bytes: [UInt8]) throws -> Response {
        var headers = HTTPFields()
        headers[.eTag] = etag
        headers[.cacheControl] = "private, max-age=86400"
        if request.headers[.ifNoneMatch] == etag { return Response(status: .notModified, headers: headers) }
        headers[.contentType] = type
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}
