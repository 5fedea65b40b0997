import CoreMetrics
import FrameCore
import Foundation
import Prometheus

/// The coordinator's Prometheus metrics, one registry per coordinator.
///
/// The handles are swift-metrics types made by a ``PrometheusMetricsFactory``
/// over this instance's own ``PrometheusCollectorRegistry``, never through the
/// global `MetricsSystem`: a test process runs many coordinators, and each
/// must count only its own work. Counters move where the work happens (the
/// scheduler, the ingestor); the gauges for jobs and nodes are set from the
/// database and the node registry when `/metrics` is scraped, so they cannot
/// drift from the truth.
public final class CoordinatorMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    let factory: PrometheusMetricsFactory

    /// Segments granted to nodes (every grant, first attempts and retries).
    public let segmentsLeased: CoreMetrics.Counter
    /// Frames written to the spool.
    public let framesReceived: CoreMetrics.Counter
    /// Bytes of the frames written to the spool.
    public let frameBytes: CoreMetrics.Counter
    /// Node heartbeats received by the scheduler.
    public let heartbeats: CoreMetrics.Counter
    /// Batched renewal statements (each renews the leases of every node that heartbeated since the last).
    public let renewalFlushes: CoreMetrics.Counter
    /// Bytes of accepted uploads.
    public let uploadedBytes: CoreMetrics.Counter
    /// Results refused because the lease was no longer the sender's (stale epoch or node).
    public let segmentsFenced: CoreMetrics.Counter
    /// Time taken by the claim statement that grants leases.
    public let leaseClaimLatency: CoreMetrics.Timer

    /// Why a segment went back to pending; the `reason` label of `frameflow_segments_requeued_total`.
    public enum RequeueReason: String, Sendable, CaseIterable {
        case nodeLost = "node_lost", nodeReconnected = "node_reconnected", leaseExpired = "lease_expired",
             segmentFailed = "segment_failed"
    }

    private let requeued: [RequeueReason: CoreMetrics.Counter]
    private let jobs: [JobStatus: CoreMetrics.Gauge]
    private let nodes: [String: CoreMetrics.Gauge]

    /// Node states shown by `frameflow nodes list`, each a series of `frameflow_nodes`.
    public static let nodeStates = ["online", "draining", "drained", "offline", "revoked"]

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        var factory = PrometheusMetricsFactory(registry: registry)
        // Claims take milliseconds; the default buckets start at 5 ms.
        factory.durationHistogramBuckets["frameflow_lease_claim_duration_seconds"] = [
            .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
            .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
            .seconds(1), .milliseconds(2500),
        ]
        self.factory = factory
        segmentsLeased = .init(label: "frameflow_segments_leased_total", factory: factory)
        framesReceived = .init(label: "frameflow_frames_received_total", factory: factory)
        frameBytes = .init(label: "frameflow_frame_bytes_total", factory: factory)
        heartbeats = .init(label: "frameflow_heartbeats_total", factory: factory)
        renewalFlushes = .init(label: "frameflow_lease_renewal_flushes_total", factory: factory)
        uploadedBytes = .init(label: "frameflow_upload_bytes_total", factory: factory)
        segmentsFenced = .init(label: "frameflow_segments_fenced_total", factory: factory)
        leaseClaimLatency = .init(label: "frameflow_lease_claim_duration_seconds", factory: factory)
        requeued = Dictionary(uniqueKeysWithValues: RequeueReason.allCases.map {
            ($0, CoreMetrics.Counter(
                label: "frameflow_segments_requeued_total", dimensions: [("reason", $0.rawValue)], factory: factory))
        })
        jobs = Dictionary(uniqueKeysWithValues: JobStatus.allCases.map {
            ($0, CoreMetrics.Gauge(label: "frameflow_jobs", dimensions: [("status", $0.rawValue)], factory: factory))
        })
        nodes = Dictionary(uniqueKeysWithValues: Self.nodeStates.map {
            ($0, CoreMetrics.Gauge(label: "frameflow_nodes", dimensions: [("state", $0)], factory: factory))
        })
    }

    /// Counts `count` segments put back to pending for `reason`.
    public func requeued(_ count: Int, _ reason: RequeueReason) {
        guard count > 0 else { return }
        requeued[reason]?.increment(by: count)
    }

    /// Sets the jobs gauge; statuses missing from `counts` are 0.
    public func setJobs(_ counts: [JobStatus: Int]) {
        for (status, gauge) in jobs { gauge.record(counts[status] ?? 0) }
    }

    /// Sets the nodes gauge from the states `frameflow nodes list` shows.
    public func setNodes(states: [String]) {
        var counts: [String: Int] = [:]
        for state in states { counts[state, default: 0] += 1 }
        for (state, gauge) in nodes { gauge.record(counts[state] ?? 0) }
    }

    /// Records one claim statement's duration in the lease-claim histogram.
    public func recordClaim(_ elapsed: Duration) {
        let (seconds, attoseconds) = elapsed.components
        leaseClaimLatency.recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }

    /// The Prometheus text exposition (format 0.0.4) of every metric.
    public func exposition() -> String { registry.emitToString() }
}
