import FrameCore
import FrameWire
import FrameStore
import Foundation
import Logging
import Synchronization

/// The coordinator's view of which nodes are connected right now.
///
/// Each live session registers a ``LiveNode`` handle here; operators act on
/// nodes through the registry (drain, revoke, enable), which persists the
/// decision in the ``NodeDirectory`` and tells the live session. A node name
/// has at most one live session: a newer connection replaces the older one,
/// which is closed with `GOODBYE DUPLICATE_SESSION`.
public actor NodeRegistry {
    /// A live session's handle: what the registry may ask of it.
    public struct LiveNode: Sendable {
        public var sessionID: UInt64
        public var name: String
        public var slots: Int
        public var labels: [String: String]
        public var softwareVersion: String
        public var address: String
        public var connectedAt: Date
        public var lastFrameAt: Date
        public var lastHeartbeat: Heartbeat?
        public var draining: Bool
        /// Sends a message on the session (best effort).
        public var send: @Sendable (Message) async -> Void
        /// Closes the session, first sending a fatal ERROR or GOODBYE with `code` when given.
        public var close: @Sendable (ErrorCode?, String) async -> Void
    }

    private var live: [String: LiveNode] = [:]
    private var nextSessionID: UInt64 = 1
    private var framesHistory: [String: (at: Date, frames: Int64, rate: Double)] = [:]
    /// Draining nodes whose heartbeat, after the drain, reported no active lease: they are `drained`.
    private var drained: [String: Date] = [:]
    /// Heartbeats not yet written to the directory, by node (the latest wins).
    private var pendingHeartbeats: [String: NodeStore.HeartbeatFigures] = [:]
    /// What the directory was last told of each live node, and when: unchanged figures are
    /// written again only after ``heartbeatRefresh``.
    private var writtenHeartbeats: [String: (figures: NodeStore.HeartbeatFigures, at: Date)] = [:]
    /// How stale a live node's `last_heartbeat_at` may get in the directory while its figures
    /// do not change. Only the directory's readers see it (other coordinators, offline listings):
    /// this coordinator answers for its own nodes from memory. Rewriting every idle node's row
    /// every flush was a thousand row updates a second at a thousand nodes.
    public let heartbeatRefresh: TimeInterval
    /// Liveness the sessions noted (from their event loops, without a hop onto this actor),
    /// applied by ``applyNoted()`` before anything here reads or writes it.
    private nonisolated let noted = Mutex<[String: Noted]>([:])
    public let directory: any NodeDirectory
    private let logger: Logger

    /// A session's latest liveness, not yet applied.
    private struct Noted: Sendable {
        var sessionID: UInt64
        var lastFrameAt: Date
        var heartbeat: (Heartbeat, at: Date)?
    }

    public init(directory: any NodeDirectory, logger: Logger, heartbeatRefresh: TimeInterval = 10) {
        self.directory = directory
        self.logger = logger
        self.heartbeatRefresh = heartbeatRefresh
    }

    public func makeSessionID() -> UInt64 {
        defer { nextSessionID += 1 }
        return nextSessionID
    }

    /// Whether `name` may connect (not revoked).
    public func isRevoked(_ name: String) async -> Bool {
        (try? await directory.adminState(name: name)) == .revoked
    }

    /// Records a newly established session; closes an older session of the same node.
    public func attach(_ node: LiveNode) async {
        let previous = live[node.name]
        live[node.name] = node
        writtenHeartbeats[node.name] = nil
        if let previous, previous.sessionID != node.sessionID {
            logger.warning("node reconnected while an older session was open; closing the older one",
                           metadata: ["node": "\(node.name)"])
            await previous.close(.duplicateSession, "a newer session for this node was opened")
        }
        do {
            try await directory.register(
                name: node.name, softwareVersion: node.softwareVersion, slots: node.slots,
                labels: node.labels, address: node.address)
        } catch {
            logger.error("cannot persist node registration", metadata: ["node": "\(node.name)", "error": "\(error)"])
        }
        drained[node.name] = nil
        if (try? await directory.adminState(name: node.name)) == .draining {
            live[node.name]?.draining = true
            await node.send(.drain(Drain(reason: "node is draining (operator)")))
        }
    }

    /// Removes a session (if it is still the current one for its node) and marks the node offline.
    public func detach(name: String, sessionID: UInt64) async {
        guard live[name]?.sessionID == sessionID else { return }
        live[name] = nil
        pendingHeartbeats[name] = nil
        writtenHeartbeats[name] = nil
        try? await directory.markOffline(name: name)
    }

    /// Notes that a frame arrived on the session; applied with the next read or flush.
    public nonisolated func recordFrame(name: String, sessionID: UInt64) {
        let now = Date()
        noted.withLock { noted in
            // Session ids only grow: an older session's late frame never hides a newer one's.
            if let existing = noted[name], existing.sessionID > sessionID { return }
            if noted[name]?.sessionID == sessionID {
                noted[name]?.lastFrameAt = now
            } else {
                noted[name] = Noted(sessionID: sessionID, lastFrameAt: now)
            }
        }
    }

    /// Notes a node's heartbeat (a frame too); applied with the next read or flush. Called on
    /// the session's event loop for every heartbeat, so it only records it under a lock.
    public nonisolated func recordHeartbeat(name: String, sessionID: UInt64, _ heartbeat: Heartbeat) {
        let now = Date()
        noted.withLock { noted in
            if let existing = noted[name], existing.sessionID > sessionID { return }
            noted[name] = Noted(sessionID: sessionID, lastFrameAt: now, heartbeat: (heartbeat, now))
        }
    }

    /// Applies what the sessions noted since the last call, in the order they arrived per node.
    /// Every method that reads the live figures, the drain state or the pending heartbeats runs
    /// it first, so none sees them older than the last frame noted.
    private func applyNoted() {
        let batch = noted.withLock { noted in defer { noted = [:] }; return noted }
        for (name, note) in batch where live[name]?.sessionID == note.sessionID {
            // Computed first: reading `live` inside an assignment through `live[name]?` is an
            // overlapping access.
            let lastFrameAt = max(live[name]?.lastFrameAt ?? note.lastFrameAt, note.lastFrameAt)
            live[name]?.lastFrameAt = lastFrameAt
            if let heartbeat = note.heartbeat { apply(heartbeat.0, from: name, at: heartbeat.at) }
        }
    }

    private func apply(_ heartbeat: Heartbeat, from name: String, at now: Date) {
        live[name]?.lastHeartbeat = heartbeat
        if let previous = framesHistory[name], now.timeIntervalSince(previous.at) >= 1 {
            let rate = Double(Int64(clamping: heartbeat.framesTotal) - previous.frames) / now.timeIntervalSince(previous.at)
            framesHistory[name] = (now, Int64(clamping: heartbeat.framesTotal), max(0, rate))
        } else if framesHistory[name] == nil {
            framesHistory[name] = (now, Int64(clamping: heartbeat.framesTotal), 0)
        }
        // Written by the next flush, with every other node's: one statement per flush, not per heartbeat.
        pendingHeartbeats[name] = NodeStore.HeartbeatFigures(
            name: name, activeLeases: Int(heartbeat.activeLeases), framesTotal: Int64(clamping: heartbeat.framesTotal))
        noteDrainProgress(name: name, activeLeases: Int(heartbeat.activeLeases))
    }

    /// The frames/s of every connected node, from memory (no directory read): what the
    /// cluster monitor keeps as history while no operator is watching.
    public func frameRates() -> [String: Double] {
        applyNoted()
        var rates: [String: Double] = [:]
        for name in live.keys { rates[name] = framesHistory[name]?.rate ?? 0 }
        return rates
    }

    /// Writes the heartbeats recorded since the last flush, in one batch.
    /// Run by ``HeartbeatFlusher`` a few times a second; a flush that waits
    /// on a database outage holds up only the next flush, never a session.
    /// A node's row is written when its figures changed since the last write, or when the
    /// last write is ``heartbeatRefresh`` old.
    public func flushHeartbeats(now: Date = Date()) async {
        applyNoted()
        guard !pendingHeartbeats.isEmpty else { return }
        let batch = pendingHeartbeats.values.filter { figures in
            guard let written = writtenHeartbeats[figures.name] else { return true }
            return written.figures != figures || now.timeIntervalSince(written.at) >= heartbeatRefresh
        }.sorted { $0.name < $1.name }
        pendingHeartbeats = [:]
        guard !batch.isEmpty else { return }
        do {
            try await directory.heartbeats(batch)
            // Only nodes still live: one that left while the statement ran is offline now.
            for figures in batch where live[figures.name] != nil { writtenHeartbeats[figures.name] = (figures, now) }
        } catch {
            logger.warning("cannot record heartbeats", metadata: ["nodes": "\(batch.count)", "error": "\(error)"])
        }
    }

    /// A draining node that reports no leases has finished its last segment: say so, once.
    /// The node's own count is the truth here: it drops to zero only after its results went out.
    private func noteDrainProgress(name: String, activeLeases: Int) {
        guard live[name]?.draining == true, activeLeases == 0, drained[name] == nil else { return }
        drained[name] = Date()
        logger.notice("node drained: its segments are finished and it takes no new ones", metadata: ["node": "\(name)"])
    }

    /// When `name` finished draining, nil while it is not (or not yet) drained.
    public func drainedAt(_ name: String) -> Date? {
        applyNoted()
        return drained[name]
    }

    public func setDraining(name: String, sessionID: UInt64) {
        // Heartbeats that came before the DRAIN are from before it.
        applyNoted()
        guard live[name]?.sessionID == sessionID else { return }
        live[name]?.draining = true
    }

    /// Live sessions, by node name.
    public func liveNodes() -> [LiveNode] {
        applyNoted()
        return live.values.sorted { $0.name < $1.name }
    }

    public func isLive(_ name: String) -> Bool { live[name] != nil }

    // MARK: operator actions

    /// Finish current segments, take no new ones.
    @discardableResult
    public func drain(_ name: String) async throws -> Bool {
        applyNoted()
        let known = try await directory.setAdminState(name: name, to: .draining)
        if live[name]?.draining != true { drained[name] = nil }
        if let node = live[name] {
            live[name]?.draining = true
            await node.send(.drain(Drain(reason: "drained by an operator")))
        }
        logger.notice("node draining", metadata: ["node": "\(name)"])
        return known || live[name] != nil
    }

    /// Disconnect now and refuse the node's certificate from then on. Returns whether the node was
    /// known; an unknown name is recorded as revoked (so its certificate is refused before it ever
    /// connects) only with `createIfUnknown`, otherwise nothing changes.
    @discardableResult
    public func revoke(_ name: String, createIfUnknown: Bool = true) async throws -> Bool {
        if !createIfUnknown, live[name] == nil, try await directory.adminState(name: name) == nil {
            return false
        }
        let known = try await directory.setAdminState(name: name, to: .revoked)
        if let node = live[name] {
            live[name] = nil
            pendingHeartbeats[name] = nil
            writtenHeartbeats[name] = nil
            await node.close(.nodeRevoked, "node revoked by an operator")
            try? await directory.markOffline(name: name)
        }
        logger.notice("node revoked", metadata: ["node": "\(name)"])
        return known
    }

    /// Lets a drained or revoked node take work again.
    @discardableResult
    public func enable(_ name: String) async throws -> Bool {
        applyNoted()
        let known = try await directory.setAdminState(name: name, to: .enabled)
        live[name]?.draining = false
        drained[name] = nil
        logger.notice("node enabled", metadata: ["node": "\(name)"])
        return known
    }

    /// Every known node, persisted records merged with live figures.
    public func statuses() async throws -> [NodeStatus] {
        var byName: [String: NodeStatus] = [:]
        for record in try await directory.list() { byName[record.name] = record }
        // Several coordinators: a node connected to another live one is online, not just ours.
        let elsewhere = (try? await directory.connectedElsewhere()) ?? []
        applyNoted()
        for node in live.values {
            var s = byName[node.name] ?? NodeStatus(
                name: node.name, state: "online", adminState: .enabled, online: true, slots: node.slots,
                activeLeases: 0, framesTotal: 0, framesPerSecond: 0, lastHeartbeatAt: nil, connectedAt: nil,
                softwareVersion: node.softwareVersion, address: node.address, labels: node.labels, recentFailures: 0)
            s.online = true
            s.slots = node.slots
            s.labels = node.labels
            s.connectedAt = node.connectedAt
            s.lastHeartbeatAt = node.lastFrameAt
            s.activeLeases = Int(node.lastHeartbeat?.activeLeases ?? 0)
            s.framesTotal = Int64(clamping: node.lastHeartbeat?.framesTotal ?? 0)
            s.framesPerSecond = framesHistory[node.name]?.rate ?? 0
            s.softwareVersion = node.softwareVersion
            s.address = node.address
            byName[node.name] = s
        }
        return byName.values.map { status in
            var s = status
            if live[s.name] == nil { s.online = elsewhere.contains(s.name) }
            s.state = switch (s.adminState, s.online) {
            case (.revoked, _): "revoked"
            case (.draining, true): drained[s.name] == nil ? "draining" : "drained"
            case (_, true): "online"
            case (_, false): "offline"
            }
            return s
        }.sorted { $0.name < $1.name }
    }
}
