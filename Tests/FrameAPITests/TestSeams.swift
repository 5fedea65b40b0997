import FrameAPI
import FrameCore
import FrameStore
import Foundation

/// Creates the job straight through JobStore with a fake one-segment plan (no probing).
struct PlanningIngestor: VideoIngestor {
    let jobs: JobStore

    func ingest(_ upload: StoredUpload, owner: UUID, options: JobOptions) async throws -> JobRecord {
        let spec = SegmentSpec(
            index: 0, streamIndex: 0, timeBase: Rational(1, 1000), decodeStartPTS: 0, startPTS: 0, endPTS: Int64.max,
            firstSample: 0, sampleCount: 10, rate: options.rate, originMicros: 0, keyframes: [Keyframe(pts: 0, pos: 0)])
        return try await jobs.create(NewJob(
            id: upload.jobID, userID: owner, originalFilename: upload.originalFilename, ext: upload.fileExtension,
            sizeBytes: upload.sizeBytes, fps: options.rate, output: options.output, durationSeconds: 10,
            labelRequirement: options.labelRequirement ?? [:], segments: [spec]))
    }
}

/// Refuses every upload as not being a video, like a probe of a text file would.
struct NotMediaIngestor: VideoIngestor {
    func ingest(_ upload: StoredUpload, owner: UUID, options: JobOptions) async throws -> JobRecord {
        throw FrameFlowError(.notMedia, "'\(upload.originalFilename)' is not a media file")
    }
}

/// Refuses uploads whose name contains "bad", plans the others.
struct PickyIngestor: VideoIngestor {
    let jobs: JobStore

    func ingest(_ upload: StoredUpload, owner: UUID, options: JobOptions) async throws -> JobRecord {
        if upload.originalFilename.contains("bad") { throw FrameFlowError(.corruptMedia, "corrupt") }
        return try await PlanningIngestor(jobs: jobs).ingest(upload, owner: owner, options: options)
    }
}

/// Fails every upload with an internal error whose text must not reach the client.
struct LeakyIngestor: VideoIngestor {
    static let secret = "/srv/private/uploads: SQLSTATE XX000 relation jobs_internal"

    func ingest(_ upload: StoredUpload, owner: UUID, options: JobOptions) async throws -> JobRecord {
        throw FrameFlowError(.internalError, Self.secret)
    }
}

/// Cancels in the store only (no nodes in these tests).
struct StoreCanceller: JobCanceller {
    let jobs: JobStore

    func cancel(jobID: UUID) async throws -> JobRecord {
        try await jobs.cancel(id: jobID).job
    }
}

/// Fails its first ingest as if the database were down (a server-side failure, 503), then plans
/// like ``PlanningIngestor``: a finish interrupted after the bytes are durable.
final class FlakyIngestor: VideoIngestor, @unchecked Sendable {
    let jobs: JobStore
    private let failed = NSLock()
    private var hasFailed = false

    init(jobs: JobStore) { self.jobs = jobs }

    func ingest(_ upload: StoredUpload, owner: UUID, options: JobOptions) async throws -> JobRecord {
        let fail = failed.withLock { () -> Bool in
            defer { hasFailed = true }
            return !hasFailed
        }
        if fail { throw FrameFlowError(.databaseUnavailable, "database unavailable (test)") }
        return try await PlanningIngestor(jobs: jobs).ingest(upload, owner: owner, options: options)
    }
}
