import Foundation

/// What an operator decided about a node, independent of whether it is connected.
///
/// `draining` nodes keep their current leases but get no new ones; `revoked`
/// nodes are refused at the handshake (their certificate is no longer honoured).
public enum NodeAdminState: String, Sendable, Codable, CaseIterable {
    case enabled, draining, revoked
}

/// A node as operators see it: identity, operator state, live figures.
public struct NodeStatus: Sendable, Codable, Equatable {
    public var name: String
    /// `online`, `draining` (finishing its segments), `drained` (draining and holding none), `offline` or `revoked`.
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
    /// Times another node finished a segment this node had declared undecodable.
    public var contradictedVerdicts: Int

    public init(
        name: String, state: String, adminState: NodeAdminState, online: Bool, slots: Int, activeLeases: Int,
        framesTotal: Int64, framesPerSecond: Double, lastHeartbeatAt: Date?, connectedAt: Date?,
        softwareVersion: String, address: String, labels: [String: String], recentFailures: Int,
        contradictedVerdicts: Int = 0
    ) {
        self.contradictedVerdicts = contradictedVerdicts
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
