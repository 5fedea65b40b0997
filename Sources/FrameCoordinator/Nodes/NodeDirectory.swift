import FrameStore
import Foundation

/// A node as operators see it: identity, operator state, live figures.
public struct NodeStatus: Sendable, Codable, Equatable {
    public var name: String
    /// `online`, `draining`, `offline` or `revoked`.
    public var state: String
    public var adminState: NodeAdminState
    public var online: Bool
    public var slots: Int
    public var activeLeases: Int
    public var framesTotal: Int64
    public var framesPerSecond: Double
    public var lastHeartbeatAt: Date?
    public var connectedAt: Date?
    public var softwareVersion: String
    public var address: String
    public var labels: [String: String]
    public var recentFailures: Int

    public init(
        name: String, state: String, adminState: NodeAdminState, online: Bool, slots: Int, activeLeases: Int,
        framesTotal: Int64, framesPerSecond: Double, lastHeartbeatAt: Date?, connectedAt: Date?,
        softwareVersion: String, address: String, labels: [String: String], recentFailures: Int
    ) {
        self.name = name
        self.state = state
        self.adminState = adminState
        self.online = online
        self.slots = slots
        self.activeLeases = activeLeases
        self.framesTotal = framesTotal
        self.framesPerSecond = framesPerSecond
        self.lastHeartbeatAt = lastHeartbeatAt
        self.connectedAt = connectedAt
        self.softwareVersion = softwareVersion
        self.address = address
        self.labels = labels
        self.recentFailures = recentFailures
    }
}

/// Where node records persist (PostgreSQL in production).
///
/// A protocol at this seam keeps the session and registry logic testable
/// without a database, and lets the store evolve independently.
public protocol NodeDirectory: Sendable {
    func register(name: String, softwareVersion: String, slots: Int, labels: [String: String], address: String) async throws
    func heartbeat(name: String, activeLeases: Int, framesTotal: Int64) async throws
    func markOffline(name: String) async throws
    /// Sets the operator state; returns false if the node is unknown (revoking an unknown name still records it).
    func setAdminState(name: String, to state: NodeAdminState) async throws -> Bool
    func adminState(name: String) async throws -> NodeAdminState?
    /// Every node ever seen, with its persisted figures.
    func list() async throws -> [NodeStatus]
}
