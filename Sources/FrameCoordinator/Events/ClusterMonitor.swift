import FrameAPI
import FrameCore
import FrameStore
import Foundation
import Logging
import Synchronization
import ServiceLifecycle

/// The operators' live view: once per `interval` it samples the node registry, the job counts,
/// the queue depth and new job events, publishes the sample to operators through the
/// ``EventHub`` (`event: cluster`), and keeps the last minutes of frames/s (cluster and per
/// node) so a dashboard opened now starts with a history (``snapshot()``).
///
/// Sampling (rather than an event per node change) bounds the push rate to one small document
/// per interval however busy the cluster is, and a node that appears is in the next sample.
/// A full sample reads the node directory and the job tables and encodes every node, which with
/// a thousand nodes is a tenth of the coordinator's idle CPU: it is taken only while an operator
/// stream is open (or for a snapshot); otherwise a tick only notes the frame rates, from memory,
/// so the history a dashboard opens with has no gap.
public final class ClusterMonitor: Service, Sendable {
    struct Sample: Codable, Sendable {
        var at: Date
        var nodes: [NodeStatus]
        var jobs: [String: Int]
        var queueDepth: Int
        var framesPerSecond: Double
        var events: [EventView]
    }

    struct EventView: Codable, Sendable {
        var id: Int64
        var at: Date
        @LowercaseID var job: UUID
        var kind: String
        var segment: UInt32?
        var node: String?
        var reason: String?
    }

    struct Point: Codable, Sendable { var at: Date; var value: Double }

    struct Snapshot: Codable, Sendable {
        var sample: Sample?
        var history: [Point]
        var nodeHistory: [String: [Point]]
        var events: [EventView]
    }

    struct State {
        var last: Sample?
        var history: [Point] = []
        var nodeHistory: [String: [Point]] = [:]
        var events: [EventView] = []
        var lastEventID: Int64 = 0

        mutating func appendHistory(at: Date, total: Double, perNode: [String: Double], historyLength: Int) {
            history.append(Point(at: at, value: total))
            if history.count > historyLength { history.removeFirst(history.count - historyLength) }
            for (name, rate) in perNode {
                nodeHistory[name, default: []].append(Point(at: at, value: rate))
                if nodeHistory[name]!.count > 120 { nodeHistory[name]!.removeFirst() }
            }
        }
    }

    let hub: EventHub
    let registry: NodeRegistry
    let jobs: JobStore
    let interval: Duration
    let historyLength: Int
    let logger: Logger
    private let state = Mutex(State())

    public init(hub: EventHub, registry: NodeRegistry, database: Database, interval: Duration = .seconds(1),
                historyLength: Int = 600, logger: Logger) {
        self.hub = hub
        self.registry = registry
        jobs = JobStore(database: database)
        self.interval = interval
        self.historyLength = historyLength
        self.logger = logger
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await self.sampleOnce()
                try? await Task.sleep(for: self.interval)
            }
        }
    }

    /// One tick: a full sample published to operators when one is watching, otherwise only the
    /// frame rates for the history.
    func sampleOnce() async {
        if hub.hasSubscribers(.operators) {
            if let sample = await fullSample() { hub.publish(.operators, name: "cluster", data: Self.json(sample)) }
        } else {
            await noteRates()
        }
    }

    /// The history points of a tick nobody watches: the same rates a full sample would record.
    private func noteRates() async {
        let rates = await registry.frameRates()
        let now = Date()
        state.withLock { state in
            state.appendHistory(at: now, total: rates.values.reduce(0, +), perNode: rates, historyLength: historyLength)
        }
    }

    /// Reads everything an operator sees, records it as the latest sample and returns it.
    private func fullSample() async -> Sample? {
        do {
            let nodes = try await registry.statuses().sorted { $0.name < $1.name }
            let counts = try await jobs.statusCounts()
            let depth = try await jobs.queueDepth()
            let after = state.withLock { $0.lastEventID }
            let events = try await jobs.recentEvents(afterID: after, limit: 50).map {
                EventView(id: $0.id, at: $0.at, job: $0.jobID, kind: $0.kind.rawValue, segment: $0.segment, node: $0.node, reason: $0.reason)
            }
            let sample = Sample(
                at: Date(), nodes: nodes,
                jobs: Dictionary(uniqueKeysWithValues: JobStatus.allCases.map { ($0.rawValue, counts[$0] ?? 0) }),
                queueDepth: depth, framesPerSecond: nodes.reduce(0) { $0 + $1.framesPerSecond }, events: events)
            state.withLock { state in
                state.last = sample
                state.appendHistory(
                    at: sample.at, total: sample.framesPerSecond,
                    perNode: Dictionary(nodes.map { ($0.name, $0.framesPerSecond) }, uniquingKeysWith: { a, _ in a }),
                    historyLength: historyLength)
                state.events.append(contentsOf: events)
                if state.events.count > 50 { state.events.removeFirst(state.events.count - 50) }
                if let lastID = events.last?.id { state.lastEventID = lastID }
            }
            return sample
        } catch {
            logger.warning("cluster monitor: cannot sample", metadata: ["error": "\(error)"])
            return nil
        }
    }

    /// Points of frames/s history kept (for tests).
    var historyCount: Int { state.withLock { $0.history.count } }

    /// The latest sample with the kept history, as JSON (the first event of an operator stream).
    /// When nobody was watching, the last full sample is old: a fresh one is taken first.
    public func snapshot() async -> String {
        let stale = state.withLock { state in
            state.last.map { -$0.at.timeIntervalSinceNow > Double(interval.components.seconds) * 2 + 1 } ?? true
        }
        if stale { _ = await fullSample() }
        let snapshot = state.withLock {
            Snapshot(sample: $0.last, history: $0.history, nodeHistory: $0.nodeHistory, events: $0.events)
        }
        return Self.json(snapshot)
    }

    static func json<T: Encodable>(_ value: T) -> String {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(value)).flatMap { String(data: $0, encoding: .utf8) } ?? "{}"
    }
}
