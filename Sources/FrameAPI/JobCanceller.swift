import FrameStore
import Foundation

/// Cancels a job and tells the nodes working on it to stop (the coordinator's
/// scheduler implements it).
///
/// The API has already checked ownership and that the job is QUEUED or
/// PROCESSING; a job that finishes in between should be reported by throwing
/// `StoreError.invalidState` (or `FrameFlowError(.invalidJobState)`), answered 409.
public protocol JobCanceller: Sendable {
    func cancel(jobID: UUID) async throws -> JobRecord
}
