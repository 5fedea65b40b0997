import FrameCore
import FrameStore
import FrameWire
import Foundation
import Logging
import Testing
@testable import FrameCoordinator

/// Heartbeats reach the registry without a hop onto it (noted from the session's event loop),
/// and reach the directory only when they say something new (issue 13: idle cost per node).
@Suite struct NodeRegistryHeartbeatTests {
    /// A directory that records the heartbeat batches it is asked to write.
    actor CountingDirectory: NodeDirectory {
        let inner = InMemoryNodeDirectory()
        private(set) var batches: [[NodeStore.HeartbeatFigures]] = []
        func register(name: String, softwareVersion: String, slots: Int, labels: [String: String], address: String) async {
            await inner.register(name: name, softwareVersion: softwareVersion, slots: slots, labels: labels, address: address)
        }
        func heartbeat(name: String, activeLeases: Int, framesTotal: Int64) async {
            await inner.heartbeat(name: name, activeLeases: activeLeases, framesTotal: framesTotal)
        }
        func heartbeats(_ batch: [NodeStore.HeartbeatFigures]) async { batches.append(batch) }
        func markOffline(name: String) async { await inner.markOffline(name: name) }
        func setAdminState(name: String, to state: NodeAdminState) async -> Bool { await inner.setAdminState(name: name, to: state) }
        func adminState(name: String) async -> NodeAdminState? { await inner.adminState(name: name) }
        func list() async -> [NodeStatus] { await inner.list() }
        func takeBatches() -> [[String]] {
            defer { batches = [] }
            return batches.map { $0.map(\.name) }
        }
    }

    static func registry(_ directory: CountingDirectory = CountingDirectory(), refresh: TimeInterval = 10) -> NodeRegistry {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        return NodeRegistry(directory: directory, logger: logger, heartbeatRefresh: refresh)
    }

    static func live(_ name: String, session: UInt64) -> NodeRegistry.LiveNode {
        NodeRegistry.LiveNode(
            sessionID: session, name: name, slots: 2, labels: [:], softwareVersion: "t", address: "test",
            connectedAt: Date(), lastFrameAt: Date(timeIntervalSince1970: 0), lastHeartbeat: nil, draining: false,
            send: { _ in }, close: { _, _ in })
    }

    static func beat(_ sequence: UInt64, leases: UInt16 = 0, frames: UInt64 = 0) -> Heartbeat {
        Heartbeat(sequence: sequence, activeLeases: leases, framesTotal: frames)
    }

    @Test func aNotedHeartbeatIsSeenByTheNextRead() async throws {
        let registry = Self.registry()
        await registry.attach(Self.live("n1", session: 5))
        // Synchronous: the session's event loop calls it, no await, no hop.
        registry.recordHeartbeat(name: "n1", sessionID: 5, Self.beat(1, leases: 2, frames: 40))
        // A late one from an older session of the node (ids only grow): it hides nothing.
        registry.recordHeartbeat(name: "n1", sessionID: 2, Self.beat(9, leases: 7, frames: 99))
        registry.recordFrame(name: "n1", sessionID: 2)
        let node = try #require(await registry.liveNodes().first)
        #expect(node.lastHeartbeat == Self.beat(1, leases: 2, frames: 40))
        #expect(node.lastFrameAt > Date(timeIntervalSince1970: 0))
        let status = try #require(try await registry.statuses().first { $0.name == "n1" })
        #expect(status.activeLeases == 2 && status.framesTotal == 40)
    }

    @Test func unchangedFiguresAreWrittenAgainOnlyAfterTheRefresh() async throws {
        let directory = CountingDirectory()
        let registry = Self.registry(directory, refresh: 10)
        await registry.attach(Self.live("a", session: 1))
        await registry.attach(Self.live("b", session: 2))
        let t0 = Date()
        registry.recordHeartbeat(name: "a", sessionID: 1, Self.beat(1))
        registry.recordHeartbeat(name: "b", sessionID: 2, Self.beat(1))
        await registry.flushHeartbeats(now: t0)
        #expect(await directory.takeBatches() == [["a", "b"]], "first heartbeats of a session are written")

        // Idle: the same figures a second later are not written again...
        registry.recordHeartbeat(name: "a", sessionID: 1, Self.beat(2))
        registry.recordHeartbeat(name: "b", sessionID: 2, Self.beat(2))
        await registry.flushHeartbeats(now: t0.addingTimeInterval(1))
        #expect(await directory.takeBatches().isEmpty)
        // ...new figures are, at once...
        registry.recordHeartbeat(name: "a", sessionID: 1, Self.beat(3, leases: 1, frames: 12))
        registry.recordHeartbeat(name: "b", sessionID: 2, Self.beat(3))
        await registry.flushHeartbeats(now: t0.addingTimeInterval(2))
        #expect(await directory.takeBatches() == [["a"]])
        // ...and unchanged ones once the refresh has passed since their last write.
        registry.recordHeartbeat(name: "a", sessionID: 1, Self.beat(4, leases: 1, frames: 12))
        registry.recordHeartbeat(name: "b", sessionID: 2, Self.beat(4))
        await registry.flushHeartbeats(now: t0.addingTimeInterval(10.5))
        #expect(await directory.takeBatches() == [["b"]])

        // A node that reconnects is written again at its first heartbeat.
        await registry.detach(name: "b", sessionID: 2)
        await registry.attach(Self.live("b", session: 3))
        registry.recordHeartbeat(name: "b", sessionID: 3, Self.beat(1))
        await registry.flushHeartbeats(now: t0.addingTimeInterval(11))
        #expect(await directory.takeBatches() == [["b"]])
    }

    @Test func aHeartbeatFromBeforeTheDrainDoesNotMakeTheNodeDrained() async throws {
        let registry = Self.registry()
        await registry.attach(Self.live("d", session: 1))
        // Idle before it drains: this heartbeat says nothing about the drain.
        registry.recordHeartbeat(name: "d", sessionID: 1, Self.beat(1, leases: 0))
        await registry.setDraining(name: "d", sessionID: 1)
        #expect(await registry.drainedAt("d") == nil)
        // The first heartbeat after it with no lease: drained.
        registry.recordHeartbeat(name: "d", sessionID: 1, Self.beat(2, leases: 0))
        #expect(await registry.drainedAt("d") != nil)
    }
}
