import FrameAPI
import FrameCore
import FrameStore
import Foundation

/// Stand-ins for the scheduler-backed services in router tests whose requests never reach an
/// ingest or a cancel (they stop at validation, authentication or a route table).
struct UnusedIngestor: VideoIngestor {
    func ingest(_ upload: StoredUpload, owner: UUID, options: JobOptions) async throws -> JobRecord {
        throw FrameFlowError(.notMedia, "not used")
    }
}

struct UnusedCanceller: JobCanceller {
    func cancel(jobID: UUID) async throws -> JobRecord { throw FrameFlowError(.jobNotFound, "not used") }
}
