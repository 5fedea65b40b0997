import FrameCore
import FrameMedia
import FrameStore
import Foundation
import NIOPosix

/// Turns a stored upload into a job: probes it (FrameMedia), plans its
/// segments, makes it durable in the ``SourceStore`` and inserts the job with
/// all its segments in one transaction.
///
/// Runs the probe's demux pass off the caller's executor since it blocks on
/// file I/O for as long as the container takes to scan. The probe reads the
/// staged local file in every configuration (a seekable file is what
/// libavformat and the keyframe scan need); the source store is written only
/// after the probe accepted it, so a refused file never reaches the bucket.
public struct MediaIngestor: Sendable {
    let jobs: JobStore
    let segmentSeconds: Double
    let maxAttempts: Int
    let maxNodeLosses: Int
    let onNewJob: @Sendable () async -> Void
    let metrics: CoordinatorMetrics?
    /// nil: the staged upload is the source, read in place (``LocalSourceStore`` has nothing to do here).
    let sources: (any SourceStore)?

    public init(
        database: Database, segmentSeconds: Double, maxAttempts: Int, maxNodeLosses: Int = 5,
        metrics: CoordinatorMetrics? = nil, sources: (any SourceStore)? = nil,
        onNewJob: @escaping @Sendable () async -> Void = {}
    ) {
        self.sources = sources
        self.maxNodeLosses = maxNodeLosses
        self.jobs = JobStore(database: database)
        self.metrics = metrics
        self.segmentSeconds = segmentSeconds
        self.maxAttempts = maxAttempts
        self.onNewJob = onNewJob
    }

    /// Probes and plans `file`, then creates job `jobID` owned by `owner`.
    /// Media problems throw ``FrameFlowError`` with the media code (NOT_MEDIA, NO_VIDEO_STREAM, ...).
    public func ingest(
        jobID: UUID, file: URL, originalFilename: String, fileExtension: String, sizeBytes: Int64,
        owner: UUID, rate: Rational, output: OutputOptions, labelRequirement: [String: String] = [:]
    ) async throws -> JobRecord {
        let segmentSeconds = self.segmentSeconds
        // The probe's demux pass blocks on file I/O: keep it off the cooperative pool.
        let analysis = try await NIOThreadPool.singleton.runIfActive {
            try Self.analyse(file: file, rate: rate, segmentSeconds: segmentSeconds)
        }
        let (info, plan) = (analysis.info, analysis.plan)
        let probeJSON = String(decoding: try JSONEncoder().encode(info), as: UTF8.self)
        // Durable where the nodes will read it before the job exists (and so before the upload is
        // acknowledged): an unreachable store is the client's 503, never an accepted upload that is lost.
        try await sources?.persist(job: jobID, ext: fileExtension, file: file, size: sizeBytes)
        let job: JobRecord
        do {
            job = try await jobs.create(NewJob(
                id: jobID, userID: owner, originalFilename: originalFilename, ext: fileExtension, sizeBytes: sizeBytes,
                fps: rate, output: output, durationSeconds: info.durationSeconds, labelRequirement: labelRequirement,
                maxAttempts: maxAttempts, maxNodeLosses: maxNodeLosses, probeJSON: probeJSON, segments: plan.segments))
        } catch {
            // Not a job: its stored copy is nobody's (the caller removes the staged file).
            try? await sources?.delete(job: jobID)
            throw error
        }
        await sources?.released(job: jobID)
        // Counted once the upload is a job: bytes the cluster accepted to work on.
        metrics?.uploadedBytes.increment(by: sizeBytes)
        await onNewJob()
        return job
    }

    struct Analysis: Sendable {
        var info: MediaInfo
        var plan: SegmentPlan
    }

    /// Probe and plan; media errors become ``FrameFlowError`` with the media code.
    static func analyse(file: URL, rate: Rational, segmentSeconds: Double) throws -> Analysis {
        do throws(MediaError) {
            let info = try MediaProbe.probe(path: file.path)
            let plan = try SegmentPlanner.makePlan(info, rate: rate, segmentSeconds: segmentSeconds)
            guard plan.totalSamples > 0 else { throw Self.noFrames(info, rate: rate) }
            return Analysis(info: info, plan: plan)
        } catch {
            throw FrameFlowError(error.code, error.message)
        }
    }

    /// The refusal of a job that would finish with an empty ZIP: it names the rate that would work.
    static func noFrames(_ info: MediaInfo, rate: Rational) -> MediaError {
        let seconds = String(format: "%.2f", info.videoEndSeconds)
        let asked = "\(rate.description) fps" + (rate.num == 1 && rate.den > 1 ? " (one frame every \(rate.den) s)" : "")
        guard let lowest = SegmentPlanner.lowestRateWithFrames(info) else {
            return MediaError(.noFrames, "the video (\(seconds) s) yields no frame at \(asked), nor at any accepted rate")
        }
        let suggestion = lowest.num == 1 && lowest.den > 1
            ? "fps=\(lowest.description) (one frame every \(lowest.den) s) or more" : "fps=\(lowest.description) or more"
        return MediaError(.noFrames, "the video (\(seconds) s) yields no frame at \(asked); use \(suggestion)")
    }
}
