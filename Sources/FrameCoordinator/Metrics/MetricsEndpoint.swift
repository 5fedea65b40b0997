import FrameAPI
import FrameCore
import FrameStore
import Foundation
import Hummingbird
import Logging
import NIOCore

/// Answers `GET /metrics`: refreshes the gauges that describe current state
/// (jobs by status from PostgreSQL, nodes by state from the registry) and
/// renders the coordinator's registry in the Prometheus text format.
///
/// A scrape during a database outage still answers, with the job gauges as
/// last seen: monitoring must keep working when the store does not.
public struct MetricsEndpoint: Sendable {
    public let metrics: CoordinatorMetrics
    let nodes: NodeRegistry
    let jobCounts: (@Sendable () async throws -> [JobStatus: Int])?
    let events: EventHub?
    let logger: Logger

    public init(
        metrics: CoordinatorMetrics, nodes: NodeRegistry, logger: Logger,
        jobCounts: (@Sendable () async throws -> [JobStatus: Int])?, events: EventHub? = nil
    ) {
        self.events = events
        self.metrics = metrics
        self.nodes = nodes
        self.jobCounts = jobCounts
        self.logger = logger
    }

    /// The exposition text after refreshing the state gauges.
    public func scrape() async -> String {
        if let jobCounts {
            do { metrics.setJobs(try await jobCounts()) } catch {
                logger.warning("metrics: cannot count jobs", metadata: ["error": "\(error)"])
            }
        }
        if let statuses = try? await nodes.statuses() {
            metrics.setNodes(states: statuses.map(\.state))
        }
        if let events { metrics.setEventStreams(open: events.openStreams, limit: events.maxStreams, refused: events.refusedStreams) }
        return metrics.exposition()
    }

    func response() async -> Response {
        Response(
            status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: await scrape())))
    }
}
