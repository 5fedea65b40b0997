import FrameCore
import FrameStore
import FrameTestSupport
import Foundation
import Logging
import Testing
@testable import FrameCoordinator

/// The coordinator's disk returns to its size: the spool after assembly and
/// after cancellation, and every file of a job once retention expires it.
@Suite(.serialized, .timeLimit(.minutes(4))) struct SpoolCleanupTests {
    typealias H = PipelineTests

    /// Bytes and regular files under `dir` (0, 0 when it does not exist).
    static func usage(_ dir: URL) -> (bytes: Int, files: [String]) {
        guard let walker = FileManager.default.enumerator(at: dir, includingPropertiesForKeys: [.fileSizeKey, .isRegularFileKey]) else {
            return (0, [])
        }
        var bytes = 0
        var files: [String] = []
        for case let url as URL in walker {
            let values = try? url.resourceValues(forKeys: [.fileSizeKey, .isRegularFileKey])
            guard values?.isRegularFile == true else { continue }
            bytes += values?.fileSize ?? 0
            files.append(url.path)
        }
        return (bytes, files.sorted())
    }

    @Test func spoolReturnsToItsSizeAfterAssemblyAndCancellationAndRetentionLeavesNothing() async throws {
        let h = try await H.makeHarness()
        let agent = try H.startAgent(h, name: "spool-a", slots: 1)
        defer { agent.cancel() }
        try await TestCluster.eventually("node connected") { await h.service.registry.isLive("spool-a") }
        let layout = h.service.layout
        let baseline = Self.usage(layout.spool)
        #expect(baseline.files.isEmpty)

        // Assembly: the job's frames pass through the spool and leave it.
        let short = try Fixtures.video(seconds: 6, name: "spool-short.mp4")
        let finished = try await H.submit(h, video: short, rate: Rational(2, 1))
        _ = try await H.waitForStatus(h, finished.id, [.completed])
        #expect(Self.usage(layout.spool).bytes == baseline.bytes)
        #expect(Self.usage(layout.spool).files.isEmpty, "\(Self.usage(layout.spool).files)")

        // Cancellation in the middle: frames were spooled, the node is still sending when it is cancelled.
        let long = try Fixtures.video(seconds: 30, name: "spool-long.mp4", size: "640x480")
        let cancelled = try await H.submit(h, video: long, rate: Rational(5, 1))
        try await TestCluster.eventually(timeout: .seconds(60), "frames in the spool") {
            Self.usage(layout.spoolDirectory(cancelled.id)).files.count >= 3
        }
        let during = Self.usage(layout.spool)
        #expect(during.bytes > baseline.bytes)
        _ = try await h.service.scheduler!.cancel(jobID: cancelled.id)
        let cancelledAt = ContinuousClock.now
        try await TestCluster.eventually(timeout: .seconds(10), "spool empty after cancel") {
            Self.usage(layout.spool).files.isEmpty
        }
        print("measured: cancel spool-empty \(ContinuousClock.now - cancelledAt)")
        // Frames still in flight from the node must not bring files back.
        try await Task.sleep(for: .seconds(2))
        #expect(Self.usage(layout.spool).bytes == baseline.bytes, "\(Self.usage(layout.spool).files)")
        #expect(!FileManager.default.fileExists(atPath: layout.spoolDirectory(cancelled.id).path))

        // Retention: once expired, no file anywhere in the storage names either job.
        let jobs = JobStore(database: h.database)
        for id in [finished.id, cancelled.id] { try await jobs.setExpiry(id: id, at: Date().addingTimeInterval(-1)) }
        let expired = try await h.service.sweeper!.sweep()
        #expect(Set(expired) == [finished.id, cancelled.id])
        for root in [layout.uploads, layout.spool, layout.results] {
            let left = FileManager.default.subpaths(atPath: root.path) ?? []
            let named = left.filter { $0.contains(finished.id.lowercased) || $0.contains(cancelled.id.lowercased) }
            #expect(named.isEmpty, "left in \(root.lastPathComponent): \(named)")
            #expect(Self.usage(root).bytes == 0, "\(root.lastPathComponent) still holds \(Self.usage(root).files)")
        }
        #expect(try await jobs.get(id: finished.id)?.status == .expired)
        #expect(try await jobs.get(id: cancelled.id)?.status == .expired)
        await h.stop()
    }

    @Test func startupRecoveryRemovesOrphansAndKeepsLiveJobs() async throws {
        let h = try await H.makeHarness()
        let layout = h.service.layout
        let video = try Fixtures.video(seconds: 6, name: "recovery.mp4")
        let live = try await H.submit(h, video: video, rate: Rational(1, 1))
        // What a killed coordinator leaves: an upload that never got its job row, a spool of an
        // unknown job, a half-written frame of a live job, a temporary archive.
        let orphan = UUID()
        try FileManager.default.createDirectory(at: layout.uploadDirectory(orphan), withIntermediateDirectories: true)
        try Data(repeating: 1, count: 1000).write(to: layout.input(orphan, ext: "mp4"))
        let ghost = UUID()
        try FileManager.default.createDirectory(at: layout.spoolDirectory(ghost), withIntermediateDirectories: true)
        try Data([1]).write(to: layout.spoolFrame(ghost, sample: 0, format: .png))
        try FileManager.default.createDirectory(at: layout.spoolDirectory(live.id), withIntermediateDirectories: true)
        let keep = layout.spoolFrame(live.id, sample: 0, format: .png)
        try Data([2]).write(to: keep)
        let half = keep.appendingPathExtension("part")
        try Data([3]).write(to: half)
        try FileManager.default.createDirectory(at: layout.results, withIntermediateDirectories: true)
        let partialZip = layout.results.appendingPathComponent(".\(UUID().uuidString.lowercased()).zip.abc.partial")
        try Data([4]).write(to: partialZip)
        let foreign = layout.uploads.appendingPathComponent("not-a-job")
        try FileManager.default.createDirectory(at: foreign, withIntermediateDirectories: true)

        let report = try await h.service.recovery!.run()
        #expect(report.orphanUploads == [orphan])
        #expect(report.staleSpools == [ghost])
        #expect(report.partialFiles == 2)
        #expect(!FileManager.default.fileExists(atPath: layout.uploadDirectory(orphan).path))
        #expect(!FileManager.default.fileExists(atPath: layout.spoolDirectory(ghost).path))
        #expect(!FileManager.default.fileExists(atPath: half.path))
        #expect(!FileManager.default.fileExists(atPath: partialZip.path))
        // What belongs to a live job, and what is not ours, stays.
        #expect(FileManager.default.fileExists(atPath: keep.path))
        #expect(FileManager.default.fileExists(atPath: layout.input(live.id, ext: "mp4").path))
        #expect(FileManager.default.fileExists(atPath: foreign.path))
        await h.stop()
    }
    /// Two coordinators share the data directories: what looks left over may be a live peer's
    /// work in flight (an upload not yet committed, a frame being renamed, an assembly).
    @Test func startupRecoveryWithALivePeerSparesFreshFilesInFlight() async throws {
        let h = try await H.makeHarness()
        let layout = h.service.layout
        let inFlight = UUID()
        try FileManager.default.createDirectory(at: layout.uploadDirectory(inFlight), withIntermediateDirectories: true)
        try Data(repeating: 1, count: 1000).write(to: layout.input(inFlight, ext: "mp4"))
        try FileManager.default.createDirectory(at: layout.results, withIntermediateDirectories: true)
        let assembling = layout.results.appendingPathComponent(".\(UUID().uuidString.lowercased()).zip.abc.partial")
        try Data([4]).write(to: assembling)
        // An old one (untouched for two hours) is left over whoever is alive.
        let stale = UUID()
        try FileManager.default.createDirectory(at: layout.uploadDirectory(stale), withIntermediateDirectories: true)
        try Data([5]).write(to: layout.input(stale, ext: "mp4"))
        let old = Date().addingTimeInterval(-7200)
        for path in [layout.input(stale, ext: "mp4").path, layout.uploadDirectory(stale).path] {
            try FileManager.default.setAttributes([.modificationDate: old], ofItemAtPath: path)
        }

        let withPeer = StorageRecovery(database: h.database, layout: layout, logger: Logger(label: "test"), peersAlive: { true })
        let report = try await withPeer.run()
        #expect(report.orphanUploads == [stale])
        #expect(report.partialFiles == 0)
        #expect(FileManager.default.fileExists(atPath: layout.input(inFlight, ext: "mp4").path))
        #expect(FileManager.default.fileExists(atPath: assembling.path))
        // Alone (the peer is gone), the same files are left overs.
        let alone = StorageRecovery(database: h.database, layout: layout, logger: Logger(label: "test"), peersAlive: { false })
        let second = try await alone.run()
        #expect(second.orphanUploads == [inFlight] && second.partialFiles == 1)
        await h.stop()
    }
}
