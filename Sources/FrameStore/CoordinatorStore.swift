import FrameCore
import Foundation

/// A running coordinator as its liveness row shows it.
public struct CoordinatorRecord: Sendable, Hashable {
    public var id: String
    public var httpAddress: String
    public var clusterAddress: String
    public var startedAt: Date
    public var expiresAt: Date

    public init(id: String, httpAddress: String, clusterAddress: String, startedAt: Date, expiresAt: Date) {
        self.id = id
        self.httpAddress = httpAddress
        self.clusterAddress = clusterAddress
        self.startedAt = startedAt
        self.expiresAt = expiresAt
    }
}

/// What one take-over pass did: the dead coordinators it buried and the leases it requeued.
public struct CoordinatorTakeover: Sendable, Hashable {
    public var deadCoordinators: [String] = []
    public var release = LeaseRelease(released: [], failedJobs: [])
    /// Nodes that were connected to a dead coordinator, now marked offline until they reconnect.
    public var nodesOffline: [String] = []
    /// Jobs whose archive assembly a dead coordinator had claimed: the claim expired now, for a survivor to take.
    public var assemblyClaimsEnded: [UUID] = []

    public var isEmpty: Bool { deadCoordinators.isEmpty }
}

/// The `coordinators` table: one liveness row per coordinator process sharing
/// the database (migration 8).
///
/// A coordinator ``announce(id:httpAddress:clusterAddress:ttl:)``s itself
/// before it serves, ``renew(id:ttl:)``s its row well within `ttl`, and
/// ``retire(id:)``s it on a graceful stop. A row past its `expires_at` is a
/// dead coordinator (SIGKILL, power loss, partition): any survivor's
/// ``takeOverExpired(by:limit:)`` requeues the leases held through it (the
/// nodes were not at fault: nothing is charged, and each node may still
/// resume its segment under the same epoch on whatever coordinator it
/// reaches next), marks its nodes offline and deletes the row, all in one
/// transaction whose row locks are taken `SKIP LOCKED`, so concurrent
/// survivors never take over the same coordinator twice.
public struct CoordinatorStore: Sendable {
    let database: Database

    public init(database: Database) {
        self.database = database
    }

    /// Records (or refreshes) this coordinator's liveness row.
    public func announce(id: String, httpAddress: String, clusterAddress: String, ttl: Duration) async throws {
        try await database.withConnection { conn in
            try conn.query("""
                INSERT INTO coordinators (id, http_address, cluster_address, expires_at)
                VALUES ($1, $2, $3, now() + make_interval(secs => $4::float8))
                ON CONFLICT (id) DO UPDATE SET http_address = EXCLUDED.http_address,
                    cluster_address = EXCLUDED.cluster_address, renewed_at = now(), expires_at = EXCLUDED.expires_at
                """, id, httpAddress, clusterAddress, ttl.seconds)
        }
    }

    /// Extends the row by `ttl`. False when the row is gone: a survivor judged this coordinator
    /// dead (it missed its renewals) and took its leases back; the caller announces itself again.
    public func renew(id: String, ttl: Duration) async throws -> Bool {
        try await database.withConnection { conn in
            try conn.query("""
                UPDATE coordinators SET renewed_at = now(), expires_at = now() + make_interval(secs => $2::float8)
                WHERE id = $1
                """, id, ttl.seconds).affectedRows == 1
        }
    }

    /// Deletes the row on a graceful stop (the sessions have ended and given their leases back).
    public func retire(id: String) async throws {
        try await database.withConnection { conn in
            try conn.query("DELETE FROM coordinators WHERE id = $1", id)
        }
    }

    /// Marks rows expired now (coordinators known to be dead), for the next take-over pass.
    public func expire(ids: [String]) async throws {
        guard !ids.isEmpty else { return }
        let list = try PostgresJSON(ids)
        try await database.withConnection { conn in
            try conn.query("""
                UPDATE coordinators SET expires_at = now() - interval '1 millisecond'
                WHERE id IN (SELECT jsonb_array_elements_text($1::jsonb))
                """, list)
        }
    }

    /// The coordinators whose rows have not expired, oldest first.
    public func live() async throws -> [CoordinatorRecord] {
        try await database.withConnection { conn in
            try conn.query("""
                SELECT id, http_address, cluster_address, started_at, expires_at FROM coordinators
                WHERE expires_at > now() ORDER BY started_at, id
                """).rows.map { row in
                CoordinatorRecord(
                    id: try row.string("id"), httpAddress: try row.string("http_address"),
                    clusterAddress: try row.string("cluster_address"), startedAt: try row.date("started_at"),
                    expiresAt: try row.date("expires_at"))
            }
        }
    }

    /// Takes back what dead coordinators held: their rows expired (and are not `survivor`'s).
    ///
    /// Leases held through a dead coordinator go back to pending uncharged (`resumable_by`
    /// keeps the node, which may resume them elsewhere under the same epoch until someone
    /// else claims them); the nodes recorded as connected to it go offline; its assembly claims
    /// lapse, so any survivor takes them over (and aborts their uploads). A lease whose node
    /// already resumed it on another coordinator names that coordinator and is left alone.
    public func takeOverExpired(by survivor: String, limit: Int = 1000) async throws -> CoordinatorTakeover {
        try await database.transaction { conn in
            var takeover = CoordinatorTakeover()
            let dead = try conn.query("""
                SELECT id FROM coordinators WHERE expires_at < now() AND id <> $1
                ORDER BY id FOR UPDATE SKIP LOCKED
                """, survivor).rows.map { try $0.string("id") }
            for id in dead {
                let release = try LeaseStore.release(
                    conn, condition: "coordinator = $4", extra: [id], skipLocked: true, limit: limit,
                    kind: .leaseRequeued, reason: "coordinator \(id) stopped renewing its liveness; taken over by \(survivor)",
                    code: .heartbeatTimeout, countLoss: false)
                takeover.release.released += release.released
                takeover.release.failedJobs += release.failedJobs
                takeover.nodesOffline += try conn.query("""
                    UPDATE nodes SET state = 'offline', active_leases = 0, coordinator = NULL, updated_at = now()
                    WHERE coordinator = $1 AND state = 'online'
                    RETURNING name
                    """, id).rows.map { try $0.string("name") }
                // Its assembly claims lapse with it: once its row is deleted, nothing else says it
                // is dead, and the claim rule (``JobStore/claimAssembly(id:claimer:ttl:)``) needs one.
                // A survivor's next check then takes the job over instead of waiting out the TTL.
                takeover.assemblyClaimsEnded += try conn.query("""
                    UPDATE jobs SET assembly_claim_expires_at = now() - interval '1 millisecond'
                    WHERE assembly_claimed_by = $1 AND status = 'PROCESSING'
                    RETURNING id
                    """, id).rows.map { try $0.uuid("id") }
                // More leases than `limit`: keep the row, the next pass takes the rest.
                if release.released.count < limit {
                    try conn.query("DELETE FROM coordinators WHERE id = $1", id)
                }
                takeover.deadCoordinators.append(id)
            }
            return takeover
        }
    }
}
