import FrameCore
import FrameStore
import Foundation

/// The production ``NodeDirectory``: node records in PostgreSQL, so operator
/// decisions (drain, revoke) survive coordinator restarts and are shared by
/// every coordinator process on the same database.
public struct PostgresNodeDirectory: NodeDirectory {
    let store: NodeStore

    /// `coordinator`: recorded on the nodes this coordinator's sessions register (several coordinators).
    public init(database: Database, coordinator: String? = nil) {
        self.store = NodeStore(database: database, coordinator: coordinator)
    }

    public func register(name: String, softwareVersion: String, slots: Int, labels: [String: String], address: String) async throws {
        _ = try await store.register(name: name, softwareVersion: softwareVersion, slots: slots, labels: labels, address: address)
    }

    public func heartbeat(name: String, activeLeases: Int, framesTotal: Int64) async throws {
        try await store.heartbeat(name: name, activeLeases: activeLeases, framesTotal: framesTotal)
    }

    public func heartbeats(_ batch: [NodeStore.HeartbeatFigures]) async throws {
        try await store.heartbeats(batch)
    }

    public func connectedElsewhere() async throws -> Set<String> {
        try await store.connectedElsewhere()
    }

    public func markOffline(name: String) async throws {
        try await store.markOffline(name: name)
    }

    public func setAdminState(name: String, to state: NodeAdminState) async throws -> Bool {
        let known = try await store.get(name: name) != nil
        _ = try await store.setAdminState(name: name, to: state)
        return known
    }

    public func adminState(name: String) async throws -> NodeAdminState? {
        try await store.adminState(name: name)
    }

    public func list() async throws -> [NodeStatus] {
        try await store.list().map { r in
            NodeStatus(
                name: r.name, state: r.state.rawValue, adminState: r.adminState, online: r.state == .online,
                slots: r.slots, activeLeases: r.activeLeases, framesTotal: r.framesTotal, framesPerSecond: 0,
                lastHeartbeatAt: r.lastHeartbeatAt, connectedAt: r.connectedAt, softwareVersion: r.softwareVersion,
                address: r.address, labels: r.labels, recentFailures: r.recentFailures,
                contradictedVerdicts: r.contradictedVerdicts)
        }
    }
}
