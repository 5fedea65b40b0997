import FrameStore
import Foundation
import Synchronization

/// Per-user limits on uploads: bytes kept on the coordinator's disk and jobs
/// waiting or running. nil means no limit.
public struct UploadQuota: Sendable, Equatable {
    public var maxStoredBytes: Int64?
    public var maxActiveJobs: Int?

    public init(maxStoredBytes: Int64? = nil, maxActiveJobs: Int? = nil) {
        self.maxStoredBytes = maxStoredBytes
        self.maxActiveJobs = maxActiveJobs
    }

    /// Whether a user holding `held` (committed jobs plus uploads in flight) may add `adding`;
    /// nil when it fits, otherwise the answer (413 STORAGE_QUOTA_EXCEEDED, 429 JOB_QUOTA_EXCEEDED).
    func refusal(held: UserUsage, adding: UserUsage) -> APIError? {
        if let max = maxActiveJobs, adding.activeJobs > 0, held.activeJobs + adding.activeJobs > max {
            return APIError(.tooManyRequests, .jobQuotaExceeded,
                            "you already have \(held.activeJobs) videos queued or processing (at most \(max)); "
                                + "upload more once some have finished")
        }
        if let max = maxStoredBytes, adding.storedBytes > 0, held.storedBytes + adding.storedBytes > max {
            return APIError(.contentTooLarge, .storageQuotaExceeded,
                            "this upload would take your stored videos past your quota of \(max) bytes "
                                + "(\(held.storedBytes) in use); delete or let old videos expire first")
        }
        return nil
    }
}

/// Uploads in progress per user, so that concurrent uploads of one user are
/// counted together against ``UploadQuota`` while they stream (the database
/// only knows jobs once they are committed).
final class UploadLedger: Sendable {
    private let inFlight = Mutex<[UUID: UserUsage]>([:])

    /// Adds `adding` to the user's in-flight total unless `committed` plus everything in flight
    /// plus `adding` breaks `quota`; returns the refusal then (and adds nothing).
    func reserve(_ user: UUID, _ adding: UserUsage, committed: UserUsage, quota: UploadQuota) -> APIError? {
        inFlight.withLock { all in
            let current = all[user] ?? UserUsage(storedBytes: 0, activeJobs: 0)
            let held = UserUsage(storedBytes: committed.storedBytes + current.storedBytes,
                                 activeJobs: committed.activeJobs + current.activeJobs)
            if let refusal = quota.refusal(held: held, adding: adding) { return refusal }
            all[user] = UserUsage(storedBytes: current.storedBytes + adding.storedBytes,
                                  activeJobs: current.activeJobs + adding.activeJobs)
            return nil
        }
    }

    func release(_ user: UUID, _ usage: UserUsage) {
        inFlight.withLock { all in
            guard let current = all[user] else { return }
            let left = UserUsage(storedBytes: current.storedBytes - usage.storedBytes,
                                 activeJobs: current.activeJobs - usage.activeJobs)
            all[user] = left.storedBytes <= 0 && left.activeJobs <= 0 ? nil : left
        }
    }

    /// The user's uploads in flight (tests).
    func inFlight(_ user: UUID) -> UserUsage {
        inFlight.withLock { $0[user] ?? UserUsage(storedBytes: 0, activeJobs: 0) }
    }
}

/// One request's share of the ledger: what it has reserved so far, released
/// once its jobs are committed (or refused). Used by the request's task only.
struct UploadReservation {
    let ledger: UploadLedger
    let user: UUID
    let committed: UserUsage
    let quota: UploadQuota
    private(set) var held = UserUsage(storedBytes: 0, activeJobs: 0)

    init(ledger: UploadLedger, user: UUID, committed: UserUsage, quota: UploadQuota) {
        self.ledger = ledger
        self.user = user
        self.committed = committed
        self.quota = quota
    }

    /// Before the body is read: refuses a user with no room left at all (so a refused client
    /// gets its answer before sending a byte).
    func precheck() throws(APIError) {
        if let refusal = quota.refusal(held: committed.adding(ledger.inFlight(user)), adding: UserUsage(storedBytes: 1, activeJobs: 1)) {
            throw refusal
        }
    }

    /// One more file part (one more job) is starting.
    mutating func addJob() throws(APIError) {
        try add(UserUsage(storedBytes: 0, activeJobs: 1))
    }

    /// `count` more bytes of a file arrived.
    mutating func addBytes(_ count: Int64) throws(APIError) {
        try add(UserUsage(storedBytes: count, activeJobs: 0))
    }

    private mutating func add(_ usage: UserUsage) throws(APIError) {
        if let refusal = ledger.reserve(user, usage, committed: committed, quota: quota) { throw refusal }
        held = held.adding(usage)
    }

    mutating func release() {
        ledger.release(user, held)
        held = UserUsage(storedBytes: 0, activeJobs: 0)
    }
}

extension UserUsage {
    func adding(_ other: UserUsage) -> UserUsage {
        UserUsage(storedBytes: storedBytes + other.storedBytes, activeJobs: activeJobs + other.activeJobs)
    }
}
