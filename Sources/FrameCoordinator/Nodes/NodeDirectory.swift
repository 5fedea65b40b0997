import FrameCore
import FrameStore
import Foundation

/// Where node records persist (PostgreSQL in production).
///
/// A protocol at this seam keeps the session and registry logic testable
/// without a database, and lets the store evolve independently.
public protocol NodeDirectory: Sendable {
    func register(name: String, softwareVersion: String, slots: Int, labels: [String: String], address: String) async throws
    func heartbeat(name: String, activeLeases: Int, framesTotal: Int64) async throws
    /// The heartbeats of many nodes at once (the registry batches them).
    func heartbeats(_ batch: [NodeStore.HeartbeatFigures]) async throws
    func markOffline(name: String) async throws
    /// Sets the operator state; returns false if the node is unknown (revoking an unknown name still records it).
    func setAdminState(name: String, to state: NodeAdminState) async throws -> Bool
    func adminState(name: String) async throws -> NodeAdminState?
    /// Every node ever seen, with its persisted figures.
    func list() async throws -> [NodeStatus]
    /// Nodes connected to another live coordinator on the same database (several coordinators):
    /// online, though this coordinator has no session with them.
    func connectedElsewhere() async throws -> Set<String>
}

extension NodeDirectory {
    /// A directory of one coordinator's own: no other coordinator.
    public func connectedElsewhere() async throws -> Set<String> { [] }

    /// One write per node; directories with a batch statement override it.
    public func heartbeats(_ batch: [NodeStore.HeartbeatFigures]) async throws {
        for figures in batch {
            try? await heartbeat(name: figures.name, activeLeases: figures.activeLeases, framesTotal: figures.framesTotal)
        }
    }
}
