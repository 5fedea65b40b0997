import Foundation

/// Names one grant of one segment: the job, the segment's index within it and
/// the lease epoch.
///
/// The epoch is the fencing token. It is bumped on every grant, so a node that
/// lost its lease (it stalled, it was cut off) and later reports results for
/// it is recognised as stale and refused.
public struct LeaseRef: Sendable, Hashable, Codable, CustomStringConvertible {
    public var jobID: UUID
    public var segment: UInt32
    public var epoch: UInt64

    public init(jobID: UUID, segment: UInt32, epoch: UInt64) {
        self.jobID = jobID
        self.segment = segment
        self.epoch = epoch
    }

    public var description: String { "\(jobID.uuidString.lowercased())/\(segment)@\(epoch)" }
}
