import FrameCore
import FrameStore
import Foundation
import Logging
import ServiceLifecycle

/// Names one coordinator process among several on one database.
public enum CoordinatorIdentity {
    /// `<host>-<8 hex digits>`: the host for operators, a random part because several
    /// coordinators may run on one host and a restarted process must not inherit the leases
    /// its previous incarnation left (those are taken over like any dead coordinator's).
    public static func generate(host: String = ProcessInfo.processInfo.hostName) -> String {
        let suffix = String(UInt32.random(in: .min ... .max), radix: 16)
        let safeHost = host.isEmpty ? "coordinator" : String(host.prefix(48))
        return "\(safeHost)-\(String(repeating: "0", count: 8 - suffix.count))\(suffix)"
    }

    /// The host part of an identity made by ``generate(host:)``.
    static func host(of id: String) -> Substring {
        guard let dash = id.lastIndex(of: "-") else { return Substring(id) }
        return id[..<dash]
    }
}

/// The liveness timings one heartbeat timeout `ttl` implies, chosen so that a survivor takes a
/// SIGKILLed coordinator's leases back within `ttl` of the kill, like a dead node's.
///
/// A beat comes every ``checkEvery`` (a sixth of `ttl`); every second beat renews the row
/// (``renewEvery``, a third: two renewals may fail before peers judge a live coordinator dead),
/// every beat looks for expired peers. The row is valid for ``validity`` = `ttl` - one beat, so
/// the worst case (last renewal just before the kill, the peer's check just before expiry) is
/// ``validity`` + one beat = `ttl`.
struct PresenceTimings: Sendable, Equatable {
    let ttl: Duration
    var checkEvery: Duration { max(ttl / 6, .milliseconds(50)) }
    var renewEvery: Duration { checkEvery * 2 }
    var validity: Duration { max(ttl - checkEvery, renewEvery * 2) }
    /// Whether beat `n` (0, 1, 2, ...) renews the row; every beat checks for dead peers.
    func renews(onBeat n: Int) -> Bool { n % 2 == 0 }
}

/// This coordinator's liveness row, and the take-over of dead coordinators' leases, as a
/// service.
///
/// ``announce()`` writes the row before the coordinator serves anything. ``run()`` then
/// renews it and lets ``CoordinatorStore/takeOverExpired(by:limit:)`` requeue the leases of any
/// coordinator whose row expired, on the beats of ``PresenceTimings``: within `ttl` (the nodes'
/// heartbeat timeout) of a SIGKILL, a survivor has the dead one's leases back in the queue (or
/// its nodes have already resumed them here). On graceful shutdown the row is deleted, after
/// the sessions have given their leases back.
public struct CoordinatorPresence: Service {
    public let id: String
    let store: CoordinatorStore
    let ttl: Duration
    let timings: PresenceTimings
    let httpAddress: String
    let clusterAddress: String
    let logger: Logger
    /// Called after a take-over requeued leases: offer them to this coordinator's idle nodes.
    let leasesReturned: @Sendable (CoordinatorTakeover) async -> Void

    public init(
        id: String, database: Database, ttl: Duration, httpAddress: String = "", clusterAddress: String = "",
        logger: Logger, leasesReturned: @escaping @Sendable (CoordinatorTakeover) async -> Void = { _ in }
    ) {
        self.id = id
        self.store = CoordinatorStore(database: database)
        self.ttl = ttl
        self.timings = PresenceTimings(ttl: ttl)
        self.httpAddress = httpAddress
        self.clusterAddress = clusterAddress
        self.logger = logger
        self.leasesReturned = leasesReturned
    }

    /// Writes the liveness row (before serving). A row of an earlier run of this coordinator
    /// (same host, same listen addresses: two live processes cannot both bind them) is dead
    /// though not yet expired, e.g. after a SIGKILL and restart: it is expired now, so that
    /// its leases are taken over at the first beat instead of after the TTL.
    public func announce() async throws {
        try await store.announce(id: id, httpAddress: httpAddress, clusterAddress: clusterAddress, ttl: timings.validity)
        logger.notice("coordinator announced", metadata: ["coordinator": "\(id)", "liveness_ttl_ms": "\(ttl.milliseconds)"])
        let earlier = try await store.live().filter(isEarlierRun)
        guard !earlier.isEmpty else { return }
        try await store.expire(ids: earlier.map(\.id))
        logger.notice("an earlier run of this coordinator left a liveness row; taking it over", metadata: [
            "coordinator": "\(id)", "earlier": "\(earlier.map(\.id))",
        ])
    }

    /// The other coordinators alive now (an earlier run of this one is not).
    public func peers() async throws -> [CoordinatorRecord] {
        try await store.live().filter { $0.id != id && !isEarlierRun($0) }
    }

    /// Same host and the same fixed listen addresses (port 0 says nothing: every run gets another).
    func isEarlierRun(_ other: CoordinatorRecord) -> Bool {
        guard other.id != id, !httpAddress.hasSuffix(":0"), !clusterAddress.hasSuffix(":0") else { return false }
        return CoordinatorIdentity.host(of: other.id) == CoordinatorIdentity.host(of: id)
            && other.httpAddress == httpAddress && other.clusterAddress == clusterAddress
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            var n = 0
            while !Task.isCancelled {
                await beat(renew: timings.renews(onBeat: n))
                n += 1
                try? await Task.sleep(for: timings.checkEvery)
            }
        }
        do { try await store.retire(id: id) } catch {
            logger.warning("cannot delete this coordinator's liveness row; peers take it over when it expires",
                           metadata: ["coordinator": "\(id)", "error": "\(error)"])
        }
    }

    /// One renewal (when `renew`) and one take-over pass.
    func beat(renew: Bool = true) async {
        do {
            if renew, try await !store.renew(id: id, ttl: timings.validity) {
                // Peers judged us dead (renewals failed for a whole TTL) and requeued our leases:
                // results for them are now refused as stale, and the nodes resume or redo them.
                logger.error("this coordinator's liveness row was taken over; announcing again", metadata: ["coordinator": "\(id)"])
                try await announce()
            }
        } catch {
            logger.warning("cannot renew this coordinator's liveness", metadata: ["coordinator": "\(id)", "error": "\(error)"])
            return
        }
        do {
            let takeover = try await store.takeOverExpired(by: id)
            guard !takeover.isEmpty else { return }
            logger.warning("took over dead coordinators", metadata: [
                "coordinator": "\(id)", "dead": "\(takeover.deadCoordinators)",
                "leases_requeued": "\(takeover.release.released.count)", "nodes_offline": "\(takeover.nodesOffline.count)",
                "assembly_claims_ended": "\(takeover.assemblyClaimsEnded.count)",
            ])
            for released in takeover.release.released {
                logger.notice("requeued a lease of a dead coordinator", metadata: [
                    "job": "\(released.lease.ref.jobID.lowercased)", "segment": "\(released.lease.ref.segment)",
                    "epoch": "\(released.lease.ref.epoch)", "node": "\(released.lease.node)",
                ])
            }
            await leasesReturned(takeover)
        } catch {
            logger.warning("coordinator take-over pass failed", metadata: ["coordinator": "\(id)", "error": "\(error)"])
        }
    }
}
