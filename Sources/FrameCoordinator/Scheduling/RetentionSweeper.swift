import FrameAPI
import FrameStore
import Foundation
import Logging

/// Expires finished jobs whose retention period is over: deletes the upload
/// (on disk, and in the object store with `uploads: s3`), the spool and the
/// ZIP, then marks the job EXPIRED (downloads answer 410).
///
/// Files go first and the status second, so a crash in between leaves a job
/// that is retried on the next sweep rather than an EXPIRED job whose files
/// linger.
public struct RetentionSweeper: Sendable {
    let jobs: JobStore
    let layout: StorageLayout
    let archives: any ArchiveStore
    let sources: any SourceStore
    let logger: Logger

    public init(
        database: Database, layout: StorageLayout, logger: Logger, archives: (any ArchiveStore)? = nil,
        sources: (any SourceStore)? = nil
    ) {
        self.sources = sources ?? LocalSourceStore(layout: layout)
        self.jobs = JobStore(database: database)
        self.layout = layout
        self.archives = archives ?? DirectoryArchiveStore(resultsDirectory: layout.results)
        self.logger = logger
    }

    /// One sweep; returns the jobs expired.
    @discardableResult
    public func sweep(limit: Int = 100) async throws -> [UUID] {
        var expired: [UUID] = []
        for id in try await jobs.dueForExpiry(limit: limit) {
            do {
                try await archives.delete(job: id)
                try await sources.delete(job: id)
            } catch {
                // The status stays: the next sweep tries again, so no EXPIRED job leaves its objects behind.
                logger.warning("retention could not delete the archive or the source; retried on the next sweep", metadata: [
                    "job": "\(id.uuidString.lowercased())", "error": "\(error)",
                ])
                continue
            }
            for url in [layout.uploadDirectory(id), layout.spoolDirectory(id), layout.result(id)] {
                try? FileManager.default.removeItem(at: url)
            }
            if try await jobs.markExpired(id: id) {
                expired.append(id)
                logger.info("job expired; files deleted", metadata: ["job": "\(id.uuidString.lowercased())"])
            }
        }
        do { try await sources.sweepAbandoned() } catch {
            logger.warning("could not look for abandoned source uploads", metadata: ["error": "\(error)"])
        }
        return expired
    }
}
