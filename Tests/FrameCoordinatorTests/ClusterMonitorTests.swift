import FrameAPI
import FrameStore
import FrameTestSupport
import Foundation
import Logging
import Testing
@testable import FrameCoordinator

/// The operators' cluster documents (`GET /admin/cluster`, `GET /admin/events`).
@Suite struct ClusterMonitorTests {
    /// Job ids in the recent events are written lower-case, as in every other body (RFC 9562).
    @Test func eventJobIdsAreLowerCase() throws {
        let job = UUID()
        let event = ClusterMonitor.EventView(id: 1, at: Date(timeIntervalSince1970: 0), job: job, kind: "COMPLETED",
                                             segment: nil, node: "node-1", reason: nil)
        let json = ClusterMonitor.json(ClusterMonitor.Snapshot(sample: nil, history: [], nodeHistory: [:], events: [event]))
        #expect(json.contains("\"job\":\"\(job.uuidString.lowercased())\""), "\(json)")
        #expect(!json.contains(job.uuidString))
    }

    static func logger() -> Logger {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        return logger
    }

    /// Nobody watching: a tick reads nothing from the database (here unreachable, so a full
    /// sample would fail and record nothing) and still extends the history from memory.
    @Test func anUnwatchedTickReadsOnlyMemory() async throws {
        let logger = Self.logger()
        let hub = EventHub()
        let registry = NodeRegistry(directory: InMemoryNodeDirectory(), logger: logger)
        let unreachable = Database(url: "postgresql://frameflow@127.0.0.1:1/none", configuration: .init(maxConnections: 1), logger: logger)
        let monitor = ClusterMonitor(hub: hub, registry: registry, database: unreachable, logger: logger)
        await monitor.sampleOnce()
        await monitor.sampleOnce()
        #expect(monitor.historyCount == 2)

        // Watched, the tick takes the full sample, which needs the database: nothing is recorded.
        let stream = try hub.subscribe(.operators)
        defer { stream.cancel() }
        await monitor.sampleOnce()
        #expect(monitor.historyCount == 2)
    }

    /// A dashboard opened after a quiet spell gets a current sample, not the last one anybody saw.
    @Test func aSnapshotWithoutARecentSampleTakesOne() async throws {
        let logger = Self.logger()
        let database = Database(url: try await TestDatabase.create(), logger: logger)
        try await database.migrate()
        let registry = NodeRegistry(directory: InMemoryNodeDirectory(), logger: logger)
        let monitor = ClusterMonitor(hub: EventHub(), registry: registry, database: database, logger: logger)
        await monitor.sampleOnce()  // unwatched: no full sample yet
        let json = await monitor.snapshot()
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        let sample = try #require(object["sample"] as? [String: Any], "\(json)")
        #expect((sample["jobs"] as? [String: Int])?["PROCESSING"] == 0)
        await database.shutdown()
    }
}
