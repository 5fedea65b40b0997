import FrameCore
import FrameStore
import Foundation
import Logging

/// Puts the coordinator's disk back in step with the database at start-up,
/// before the API or the node listener accepts anything.
///
/// A coordinator that was killed may leave: an upload folder whose job row
/// was never committed (the upload never got its 201, so nobody is owed a
/// job: removed), spool folders of jobs that are finished or unknown
/// (removed), half-written spool frames (`*.part`, removed; the segment is
/// redone and its frames rewritten under the same names), and temporary
/// archives (`.*.partial`, removed). Jobs whose segments are all done but
/// whose ZIP was not assembled are not handled here: the scheduler's tick
/// assembles them (``LeaseScheduler/assembleFinishedJobs()``).
///
/// Several coordinators may share the data directories. While another
/// coordinator is alive (``peersAlive``), an upload folder without a job, a
/// `.part` frame or a `.partial` archive may be its work in flight (an upload
/// not yet committed, a frame being renamed, an assembly), so those are
/// removed only once untouched for `busyAge`; spool folders of finished or
/// unknown jobs go as before (no coordinator writes to them).
public struct StorageRecovery: Sendable {
    /// What one pass removed, for the log and for tests.
    public struct Report: Sendable, Equatable {
        public var orphanUploads: [UUID] = []
        public var staleSpools: [UUID] = []
        public var partialFiles = 0
    }

    let jobs: JobStore
    let layout: StorageLayout
    let logger: Logger
    /// Whether another coordinator is alive now (nil: this coordinator is alone by construction).
    let peersAlive: (@Sendable () async throws -> Bool)?
    /// With live peers, how long an in-flight-looking file must have been untouched to count as left over.
    let busyAge: TimeInterval

    public init(
        database: Database, layout: StorageLayout, logger: Logger,
        peersAlive: (@Sendable () async throws -> Bool)? = nil, busyAge: TimeInterval = 3600
    ) {
        self.jobs = JobStore(database: database)
        self.layout = layout
        self.logger = logger
        self.peersAlive = peersAlive
        self.busyAge = busyAge
    }

    /// One pass over uploads, spool and results. Must run while no upload is in flight.
    @discardableResult
    public func run() async throws -> Report {
        var report = Report()
        let fm = FileManager.default
        let uploads = Self.jobFolders(in: layout.uploads)
        let spools = Self.jobFolders(in: layout.spool)
        let known = try await jobs.statuses(of: Array(Set(uploads.keys).union(spools.keys)))
        // When unsure, assume a peer: keeping a left-over file an hour longer costs little.
        var shared = false
        if let peersAlive { shared = (try? await peersAlive()) ?? true }
        let cutoff = Date().addingTimeInterval(-busyAge)
        func leftOver(_ url: URL) -> Bool { !shared || Self.lastTouched(url) < cutoff }

        for (id, url) in uploads where known[id] == nil && leftOver(url) {
            try? fm.removeItem(at: url)
            report.orphanUploads.append(id)
        }
        for (id, url) in spools {
            if let status = known[id], !status.isFinished {
                for name in (try? fm.contentsOfDirectory(atPath: url.path)) ?? []
                where name.hasSuffix(".part") && leftOver(url.appendingPathComponent(name)) {
                    try? fm.removeItem(at: url.appendingPathComponent(name))
                    report.partialFiles += 1
                }
            } else {
                try? fm.removeItem(at: url)
                report.staleSpools.append(id)
            }
        }
        for name in (try? fm.contentsOfDirectory(atPath: layout.results.path)) ?? []
        where name.hasPrefix(".") && name.hasSuffix(".partial") && leftOver(layout.results.appendingPathComponent(name)) {
            try? fm.removeItem(at: layout.results.appendingPathComponent(name))
            report.partialFiles += 1
        }
        if report != Report() {
            logger.notice("start-up recovery cleaned the storage", metadata: [
                "orphan_uploads": "\(report.orphanUploads.map(\.lowercased))",
                "stale_spools": "\(report.staleSpools.count)", "partial_files": "\(report.partialFiles)",
            ])
        }
        return report
    }

    /// The newest modification time of `url` and, for a folder, of its direct entries
    /// (an upload in flight grows a file inside its folder).
    static func lastTouched(_ url: URL) -> Date {
        let fm = FileManager.default
        func modified(_ path: String) -> Date {
            ((try? fm.attributesOfItem(atPath: path))?[.modificationDate] as? Date) ?? .distantPast
        }
        var newest = modified(url.path)
        for name in (try? fm.contentsOfDirectory(atPath: url.path)) ?? [] {
            newest = max(newest, modified(url.appendingPathComponent(name).path))
        }
        return newest
    }

    /// Sub-folders named after a job id; anything else is not ours and is left alone.
    static func jobFolders(in root: URL) -> [UUID: URL] {
        var found: [UUID: URL] = [:]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? [] {
            guard let id = UUID(uuidString: name), name == id.lowercased else { continue }
            found[id] = root.appendingPathComponent(name)
        }
        return found
    }
}
