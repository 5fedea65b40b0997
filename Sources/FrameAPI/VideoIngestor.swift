import FrameCore
import FrameStore
import Foundation

/// Turns a stored upload into a job: probes it, plans segments and inserts the
/// job with its segments (the coordinator implements it with FrameMedia and
/// FrameStore).
///
/// The API calls it only after the upload is durable on disk and answers 201
/// only after it returns, so an accepted upload always has a committed job.
/// Media problems are thrown as ``FrameFlowError`` with a media code
/// (`NOT_MEDIA`, `NO_VIDEO_STREAM`, `CORRUPT_MEDIA`, `UNSUPPORTED_CODEC`, ...),
/// which the API answers with 422 and that code. The implementation must use
/// `upload.jobID` as the job's id: the upload already lives in a folder named after it.
public protocol VideoIngestor: Sendable {
    func ingest(_ upload: StoredUpload, owner: UUID, options: JobOptions) async throws -> JobRecord
}
