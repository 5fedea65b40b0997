import FrameCore
import FrameStore
import Foundation

/// A ``NodeDirectory`` kept in memory: for tests and for embedding the
/// coordinator where persistence is not wanted. Nothing survives a restart.
public actor InMemoryNodeDirectory: NodeDirectory {
    private var nodes: [String: NodeStatus] = [:]

    public init() {}

    public func register(name: String, softwareVersion: String, slots: Int, labels: [String: String], address: String) {
        var node = nodes[name] ?? NodeStatus(
            name: name, state: "online", adminState: .enabled, online: true, slots: slots, activeLeases: 0,
            framesTotal: 0, framesPerSecond: 0, lastHeartbeatAt: nil, connectedAt: nil,
            softwareVersion: softwareVersion, address: address, labels: labels, recentFailures: 0)
        node.online = true
        node.slots = slots
        node.labels = labels
        node.softwareVersion = softwareVersion
        node.address = address
        node.connectedAt = Date()
        node.lastHeartbeatAt = Date()
        nodes[name] = node
    }

    public func heartbeat(name: String, activeLeases: Int, framesTotal: Int64) {
        nodes[name]?.lastHeartbeatAt = Date()
        nodes[name]?.activeLeases = activeLeases
        nodes[name]?.framesTotal = framesTotal
    }

    public func markOffline(name: String) {
        nodes[name]?.online = false
        nodes[name]?.activeLeases = 0
    }

    public func setAdminState(name: String, to state: NodeAdminState) -> Bool {
        guard nodes[name] != nil else {
            if state == .revoked {
                nodes[name] = NodeStatus(
                    name: name, state: "revoked", adminState: .revoked, online: false, slots: 0, activeLeases: 0,
                    framesTotal: 0, framesPerSecond: 0, lastHeartbeatAt: nil, connectedAt: nil,
                    softwareVersion: "", address: "", labels: [:], recentFailures: 0)
            }
            return false
        }
        nodes[name]?.adminState = state
        return true
    }

    public func adminState(name: String) -> NodeAdminState? { nodes[name]?.adminState }

    public func list() -> [NodeStatus] { nodes.values.sorted { $0.name < $1.name } }
}
