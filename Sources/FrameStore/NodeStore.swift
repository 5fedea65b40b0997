import FrameCore
import Foundation

/// Whether a node currently holds a session with the coordinator.
public enum NodeConnectionState: String, Sendable, Codable, CaseIterable {
    case online, offline
}

/// One row of the `nodes` table: identity (the certificate's name), the
/// operator's decision, and the last reported capacity and counters.
public struct NodeRecord: Sendable, Codable, Hashable {
    public var name: String
    public var state: NodeConnectionState
    public var adminState: NodeAdminState
    public var slots: Int
    public var labels: [String: String]
    public var softwareVersion: String
    public var address: String
    public var connectedAt: Date?
    public var lastHeartbeatAt: Date?
    public var activeLeases: Int
    public var framesTotal: Int64
    /// Segments that failed or whose lease expired while this node held them.
    public var failures: Int
    /// Failures of the last hour (SEGMENT_FAILED, and leases lost because the node died), from
    /// `job_events`; 0 in rows returned by writes.
    public var recentFailures: Int
    /// Times another node finished a segment this node had declared undecodable (non-retryable).
    public var contradictedVerdicts: Int

    public init(
        name: String, state: NodeConnectionState, adminState: NodeAdminState, slots: Int,
        labels: [String: String], softwareVersion: String, address: String, connectedAt: Date?,
        lastHeartbeatAt: Date?, activeLeases: Int, framesTotal: Int64, failures: Int, recentFailures: Int = 0,
        contradictedVerdicts: Int = 0
    ) {
        self.recentFailures = recentFailures
        self.contradictedVerdicts = contradictedVerdicts
        self.name = name
        self.state = state
        self.adminState = adminState
        self.slots = slots
        self.labels = labels
        self.softwareVersion = softwareVersion
        self.address = address
        self.connectedAt = connectedAt
        self.lastHeartbeatAt = lastHeartbeatAt
        self.activeLeases = activeLeases
        self.framesTotal = framesTotal
        self.failures = failures
    }

    init(row: PostgresRow) throws {
        self.init(
            name: try row.string("name"),
            state: try row.enum("state"),
            adminState: try row.enum("admin_state"),
            slots: try row.int("slots"),
            labels: try row.json("labels"),
            softwareVersion: try row.string("software_version"),
            address: try row.string("address"),
            connectedAt: try row.optionalDate("connected_at"),
            lastHeartbeatAt: try row.optionalDate("last_heartbeat_at"),
            activeLeases: try row.int("active_leases"),
            framesTotal: try row.int64("frames_total"),
            failures: try row.int("failures"),
            recentFailures: (try? row.int("recent_failures")) ?? 0,
            contradictedVerdicts: try row.int("contradicted_verdicts"))
    }
}

/// The node registry: sessions (register, heartbeat, offline) and the
/// operator's admin state (enable, drain, revoke).
///
/// A node's name is the identity from its certificate, so the registry is
/// keyed by it and `register` is an upsert: a node that reconnects with the
/// same certificate is the same node. The admin state survives reconnects,
/// which is what makes revocation stick.
public struct NodeStore: Sendable {
    let database: Database
    /// The coordinator whose sessions this store records (`nodes.coordinator`); nil: not recorded.
    public let coordinator: String?

    public init(database: Database, coordinator: String? = nil) {
        self.database = database
        self.coordinator = coordinator
    }

    static let columns = """
        name, state, admin_state, slots, labels, software_version, address, connected_at,
        last_heartbeat_at, active_leases, frames_total, failures, contradicted_verdicts
        """

    /// `columns` plus the node's failures of the last hour (for reads only).
    static let columnsWithRecentFailures = columns + """
        , (SELECT count(*) FROM job_events e
           WHERE e.node = nodes.name AND e.at > now() - interval '1 hour'
             AND (e.kind IN ('segment_retry', 'segment_failed', 'lease_expired', 'verdict_unconfirmed')
                  OR (e.kind = 'lease_requeued' AND e.detail NOT LIKE '%not charged%'))) AS recent_failures
        """

    /// Records a (re)connected node. A revoked node's row is returned unchanged
    /// apart from its reported details, and it stays offline, so the caller can
    /// refuse the session by looking at `adminState`.
    public func register(
        name: String, softwareVersion: String, slots: Int, labels: [String: String], address: String
    ) async throws -> NodeRecord {
        let labelsJSON = try PostgresJSON(labels)
        return try await database.withConnection { conn in
            let row = try conn.query("""
                INSERT INTO nodes AS n (name, state, slots, labels, software_version, address,
                                        connected_at, last_heartbeat_at, active_leases, coordinator)
                VALUES ($1, 'online', $2::int, $3::jsonb, $4, $5, now(), now(), 0, $6::text)
                ON CONFLICT (name) DO UPDATE SET
                    state = CASE WHEN n.admin_state = 'revoked' THEN 'offline' ELSE 'online' END,
                    slots = EXCLUDED.slots, labels = EXCLUDED.labels,
                    software_version = EXCLUDED.software_version, address = EXCLUDED.address,
                    connected_at = CASE WHEN n.admin_state = 'revoked' THEN n.connected_at ELSE now() END,
                    last_heartbeat_at = CASE WHEN n.admin_state = 'revoked' THEN n.last_heartbeat_at ELSE now() END,
                    active_leases = 0, updated_at = now(), coordinator = EXCLUDED.coordinator
                RETURNING \(Self.columns)
                """, name, slots, labelsJSON, softwareVersion, address, coordinator).first!
            return try NodeRecord(row: row)
        }
    }

    /// Records a heartbeat and the node's own counters. Throws `notFound` for
    /// a name that never registered (the session layer has a bug if it happens).
    public func heartbeat(name: String, activeLeases: Int, framesTotal: Int64) async throws {
        try await database.withConnection { conn in
            let result = try conn.query("""
                UPDATE nodes SET last_heartbeat_at = now(), active_leases = $2::int, frames_total = $3::bigint,
                                 updated_at = now()
                WHERE name = $1
                """, name, activeLeases, framesTotal)
            if result.affectedRows == 0 { throw StoreError.notFound("no node named \(name)") }
        }
    }

    /// One node's heartbeat figures, for ``heartbeats(_:)``.
    public struct HeartbeatFigures: Sendable, Equatable, Codable {
        public var name: String
        public var activeLeases: Int
        public var framesTotal: Int64
        public init(name: String, activeLeases: Int, framesTotal: Int64) {
            self.name = name
            self.activeLeases = activeLeases
            self.framesTotal = framesTotal
        }
    }

    /// Records the heartbeats of many nodes in one statement (the
    /// coordinator batches them); names that never registered are ignored.
    public func heartbeats(_ batch: [HeartbeatFigures]) async throws {
        guard !batch.isEmpty else { return }
        let rows = try PostgresJSON(batch)
        try await database.withConnection { conn in
            _ = try conn.query("""
                UPDATE nodes SET last_heartbeat_at = now(), active_leases = b.active, frames_total = b.frames,
                                 updated_at = now()
                FROM (SELECT e->>'name' AS name, (e->>'activeLeases')::int AS active, (e->>'framesTotal')::bigint AS frames
                      FROM jsonb_array_elements($1::jsonb) AS e) AS b
                WHERE nodes.name = b.name
                """, rows)
        }
    }

    /// Marks a node's session as gone; unknown names are ignored. With several coordinators,
    /// only the coordinator the node is connected to may: a node that has moved on to another
    /// coordinator stays online when its old session's end is recorded late.
    public func markOffline(name: String) async throws {
        try await database.withConnection { conn in
            try conn.query("""
                UPDATE nodes SET state = 'offline', active_leases = 0, updated_at = now()
                WHERE name = $1 AND ($2::text IS NULL OR coordinator IS NULL OR coordinator = $2::text)
                """, name, coordinator)
        }
    }

    /// Nodes online through another coordinator whose liveness row has not expired.
    public func connectedElsewhere() async throws -> Set<String> {
        guard let coordinator else { return [] }
        return try await database.withConnection { conn in
            Set(try conn.query("""
                SELECT n.name FROM nodes n JOIN coordinators c ON c.id = n.coordinator
                WHERE n.state = 'online' AND n.coordinator <> $1 AND c.expires_at > now()
                """, coordinator).rows.map { try $0.string("name") })
        }
    }

    /// Sets the operator's decision. Returns nil for an unknown name, except
    /// that revoking an unknown name creates a revoked row, so a certificate
    /// can be refused before its node ever connects.
    public func setAdminState(name: String, to adminState: NodeAdminState) async throws -> NodeRecord? {
        try await database.withConnection { conn in
            let result: PostgresResult
            if adminState == .revoked {
                result = try conn.query("""
                    INSERT INTO nodes (name, state, admin_state) VALUES ($1, 'offline', 'revoked')
                    ON CONFLICT (name) DO UPDATE SET admin_state = 'revoked', updated_at = now()
                    RETURNING \(Self.columns)
                    """, name)
            } else {
                result = try conn.query("""
                    UPDATE nodes SET admin_state = $2, updated_at = now() WHERE name = $1
                    RETURNING \(Self.columns)
                    """, name, adminState.rawValue)
            }
            return try result.first.map(NodeRecord.init(row:))
        }
    }

    /// The operator's decision for a node, nil if the name is unknown.
    public func adminState(name: String) async throws -> NodeAdminState? {
        try await database.withConnection { conn in
            try conn.query("SELECT admin_state FROM nodes WHERE name = $1", name).first?.enum("admin_state")
        }
    }

    /// One node by name.
    public func get(name: String) async throws -> NodeRecord? {
        try await database.withConnection { conn in
            try conn.query("SELECT \(Self.columnsWithRecentFailures) FROM nodes WHERE name = $1", name)
                .first.map(NodeRecord.init(row:))
        }
    }

    /// All known nodes, by name.
    public func list() async throws -> [NodeRecord] {
        try await database.withConnection { conn in
            try conn.query("SELECT \(Self.columnsWithRecentFailures) FROM nodes ORDER BY name").rows.map(NodeRecord.init(row:))
        }
    }
}
