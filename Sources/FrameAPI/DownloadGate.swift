import FrameCore
import FrameStore
import Foundation
import Hummingbird

/// Every download passes here: it is audited (who fetched which ZIP or link, when, from where)
/// and ZIP fetches are rate-limited per user (``APIConfiguration/downloadsPerWindow`` per
/// ``APIConfiguration/downloadWindow``, 429 `RATE_LIMITED` with `Retry-After` past it).
///
/// A fetch through a signed link counts against the link owner's limit. A ranged request that
/// continues a download (`Range` not starting at byte 0) is recorded but not counted again, so
/// a client resuming a large ZIP is not punished for it; issuing a link is recorded, not counted.
struct DownloadGate: Sendable {
    let audit: DownloadAuditStore
    let limit: Int?
    let window: Duration

    func admit(user: UUID, job: UUID, kind: DownloadAuditStore.Kind, request: Request, context: APIRequestContext) async throws {
        let counted = kind != .link && !Self.continuesDownload(request.headers[.range])
        let remote = context.channel.remoteAddress?.ipAddress
        let result = try await audit.admit(
            userID: user, jobID: job, kind: kind, remote: remote, limit: counted ? limit : nil, window: window)
        if case .limited(let retryAfter) = result {
            var error = APIError(.tooManyRequests, .rateLimited,
                                 "at most \(limit ?? 0) downloads per \(Int(window.seconds)) s; retry in \(retryAfter) s")
            error.headers[.retryAfter] = String(retryAfter)
            throw error
        }
    }

    /// A single range whose first byte is past 0 (`bytes=1000-`), i.e. the rest of a started download.
    static func continuesDownload(_ range: String?) -> Bool {
        guard let range, range.lowercased().hasPrefix("bytes=") else { return false }
        let spec = range.dropFirst(6).trimmingCharacters(in: .whitespaces)
        guard !spec.contains(","), let dash = spec.firstIndex(of: "-"), let start = Int(spec[..<dash]) else { return false }
        return start > 0
    }
}
