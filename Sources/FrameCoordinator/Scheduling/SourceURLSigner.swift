import FrameCore
import FrameObjectStore
import FrameWire
import Foundation

/// `storage.s3.node_reads: direct`: turns a LEASE into a LEASE_URL carrying a presigned GET of
/// the job's source object, for nodes whose session speaks ``ProtocolVersion/directReads``.
///
/// The URL lives at least `minimumLifetime` and at least as long as the lease may run without
/// progress (its progress deadline plus one lease TTL), capped at S3's 7 days. A lease that keeps
/// making progress may outlive it; the node then reads through the coordinator (READ stays
/// served for every lease), so an expired URL costs a detour, never the segment.
public struct SourceURLSigner: Sendable {
    let client: S3Client
    let minimumLifetime: Duration
    let progressDeadline: ProgressDeadline
    /// S3's limit on a presigned URL's lifetime.
    static let maximumLifetime: Duration = .seconds(7 * 86_400)

    public init(client: S3Client, minimumLifetime: Duration, progressDeadline: ProgressDeadline) {
        self.client = client
        self.minimumLifetime = minimumLifetime
        self.progressDeadline = progressDeadline
    }

    /// How long the URL of a lease with `spec` and `ttl` is valid.
    func lifetime(for spec: SegmentSpec, ttl: Duration) -> Duration {
        min(Self.maximumLifetime, max(minimumLifetime, progressDeadline.limit(for: spec) + ttl))
    }

    /// The message that grants `lease` to a node speaking `version`: LEASE_URL when it can read
    /// directly, the plain LEASE otherwise.
    func message(for lease: Lease, sourceExt: String, nodeVersion: UInt16) -> Message {
        guard nodeVersion >= ProtocolVersion.directReads else { return .lease(lease) }
        let ttl = Duration.milliseconds(Int64(lease.leaseTTLMillis))
        let seconds = Int(lifetime(for: lease.segment, ttl: ttl).components.seconds)
        let signed = client.presignedGet(ObjectKeys.upload(lease.lease.jobID, ext: sourceExt), expires: seconds)
        return .leaseURL(LeaseURL(
            lease: lease, sourceURL: signed.url.absoluteString,
            expiresAtMillis: UInt64(max(0, (signed.expiresAt.timeIntervalSince1970 * 1000).rounded(.down)))))
    }
}
