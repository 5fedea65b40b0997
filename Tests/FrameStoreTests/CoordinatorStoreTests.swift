import FrameCore
import Foundation
@testable import FrameStore
import Testing

/// Several coordinators on one database: liveness rows, the take-over of a dead
/// coordinator's leases, the assembly claim, node ownership and LISTEN/NOTIFY.
@Suite("CoordinatorStore", .enabled(if: TestDatabase.enabled))
struct CoordinatorStoreTests {
    @Test("a dead coordinator's leases are requeued exactly once, uncharged and resumable; a live one's are not touched")
    func takeOver() async throws {
        try await TestDatabase.withFresh(maxConnections: 12) { db, _ in
            let f = Fixtures(db: db)
            _ = try await f.job(for: try await f.user(), segments: 6)
            try await f.node("n-a")
            try await f.node("n-b")
            let store = CoordinatorStore(database: db)
            // A's row outlives the setup however loaded the machine is; it dies by `expire` below.
            try await store.announce(id: "A", httpAddress: "a:1", clusterAddress: "a:2", ttl: .seconds(60))
            try await store.announce(id: "B", httpAddress: "b:1", clusterAddress: "b:2", ttl: .seconds(60))
            try await store.announce(id: "C", httpAddress: "c:1", clusterAddress: "c:2", ttl: .seconds(60))
            let viaA = LeaseStore(database: db, coordinator: "A")
            let viaB = LeaseStore(database: db, coordinator: "B")
            let heldA = try await viaA.claim(node: "n-a", limit: 3)
            let heldB = try await viaB.claim(node: "n-b", limit: 3)
            #expect(heldA.count == 3 && heldB.count == 3)
            // n-a is connected to A (its session registered it there).
            _ = try await NodeStore(database: db, coordinator: "A").register(
                name: "n-a", softwareVersion: "t", slots: 3, labels: [:], address: "x")

            // Nothing has expired yet.
            #expect(try await store.takeOverExpired(by: "B").isEmpty)
            #expect(try await store.live().map(\.id) == ["A", "B", "C"])
            try await store.expire(ids: ["A"])
            #expect(try await store.live().map(\.id) == ["B", "C"])

            // Two survivors at once: only one buries A and requeues its leases.
            async let byB = store.takeOverExpired(by: "B")
            async let byC = store.takeOverExpired(by: "C")
            let results = try await [byB, byC]
            let released = results.flatMap(\.release.released)
            #expect(released.count == 3, "each of A's leases requeued exactly once")
            #expect(Set(released.map(\.lease.ref)) == Set(heldA.map(\.ref)))
            #expect(released.allSatisfy { $0.newState == .pending && $0.nodeLosses == 0 })
            #expect(results.flatMap(\.deadCoordinators) == ["A"])
            #expect(results.flatMap(\.nodesOffline) == ["n-a"])
            #expect(try await store.takeOverExpired(by: "C").isEmpty, "a second pass finds nothing")
            // B's leases are untouched.
            #expect(Set(try await viaB.leases(node: "n-b")) == Set(heldB.map(\.ref)))

            // The node resumes A's leases on B under the same epoch (nobody claimed them), and
            // they now name B: B's death would take them back, A's row is gone.
            let resumed = try await viaB.resume(node: "n-a", held: heldA.map(\.ref))
            #expect(Set(resumed.resumed.map(\.ref)) == Set(heldA.map(\.ref)))
            let owners = try await db.withConnection { conn in
                try conn.query("SELECT DISTINCT coordinator FROM segments WHERE state = 'leased'").rows
                    .map { try $0.string("coordinator") }
            }
            #expect(owners == ["B"])
        }
    }

    @Test("renew reports a row a survivor took over; retire deletes it")
    func renewAndRetire() async throws {
        try await TestDatabase.withFresh { db, _ in
            let store = CoordinatorStore(database: db)
            try await store.announce(id: "A", httpAddress: "", clusterAddress: "", ttl: .seconds(60))
            #expect(try await store.renew(id: "A", ttl: .seconds(60)))
            // Expired by hand, not by sleeping past a short TTL: a loaded machine made that race.
            try await store.expire(ids: ["A"])
            _ = try await store.takeOverExpired(by: "B")
            #expect(try await store.renew(id: "A", ttl: .seconds(10)) == false)
            try await store.announce(id: "A", httpAddress: "", clusterAddress: "", ttl: .seconds(10))
            #expect(try await store.live().map(\.id) == ["A"])
            try await store.retire(id: "A")
            #expect(try await store.live().isEmpty)
        }
    }

    @Test("assembly is claimed by one coordinator; taken over only from a dead claimer")
    func assemblyClaim() async throws {
        try await TestDatabase.withFresh { db, _ in
            let f = Fixtures(db: db)
            let job = try await f.job(for: try await f.user(), segments: 1)
            try await f.node("n")
            let store = CoordinatorStore(database: db)
            try await store.announce(id: "A", httpAddress: "", clusterAddress: "", ttl: .seconds(60))
            try await store.announce(id: "B", httpAddress: "", clusterAddress: "", ttl: .seconds(60))
            // Not claimable while a segment is unfinished.
            #expect(try await f.jobs.claimAssembly(id: job.id, claimer: "A", ttl: .seconds(60)) == nil)
            let leases = LeaseStore(database: db, coordinator: "A")
            let lease = try #require(try await leases.claim(node: "n", limit: 1).first)
            guard case .accepted(let progress) = try await leases.complete(lease.ref, node: "n"), progress.allSegmentsDone else {
                Issue.record("segment not accepted")
                return
            }
            #expect(try await f.jobs.claimAssembly(id: job.id, claimer: "A", ttl: .seconds(60)) != nil)
            #expect(try await f.jobs.claimAssembly(id: job.id, claimer: "B", ttl: .seconds(60)) == nil, "A is alive")
            #expect(try await f.jobs.claimAssembly(id: job.id, claimer: "A", ttl: .seconds(60)) != nil, "the claimer may retry")
            try await store.expire(ids: ["A"])
            #expect(try await f.jobs.claimAssembly(id: job.id, claimer: "B", ttl: .seconds(60)) != nil, "A died: B takes over")
            #expect(try await f.jobs.claimAssembly(id: job.id, claimer: "A", ttl: .seconds(60)) == nil, "B holds it now")
            try await f.jobs.releaseAssemblyClaim(id: job.id, claimer: "B")
            _ = try await f.jobs.markCompleted(id: job.id)
            #expect(try await f.jobs.claimAssembly(id: job.id, claimer: "B", ttl: .seconds(60)) == nil, "a completed job is not assembled again")
        }
    }

    @Test("a node's old session ending on another coordinator does not mark it offline")
    func nodeOwnership() async throws {
        try await TestDatabase.withFresh { db, _ in
            let onA = NodeStore(database: db, coordinator: "A")
            let onB = NodeStore(database: db, coordinator: "B")
            _ = try await onA.register(name: "n", softwareVersion: "t", slots: 1, labels: [:], address: "x")
            _ = try await onB.register(name: "n", softwareVersion: "t", slots: 1, labels: [:], address: "x")
            try await onA.markOffline(name: "n")
            #expect(try await onB.get(name: "n")?.state == .online)
            try await onB.markOffline(name: "n")
            #expect(try await onB.get(name: "n")?.state == .offline)
        }
    }

    @Test("NOTIFY reaches a listener on another connection; a quiet wait returns nothing")
    func listenNotify() async throws {
        try await TestDatabase.withFresh { db, _ in
            let listener = try await db.listen(to: ["ff_test"])
            #expect(try await listener.next(timeout: .milliseconds(100)).isEmpty)
            try await db.notify(channel: "ff_test", payloads: ["one", "two"])
            var got: [String] = []
            let deadline = ContinuousClock.now + .seconds(5)
            while got.count < 2 && ContinuousClock.now < deadline {
                got += try await listener.next(timeout: .milliseconds(200)).map(\.payload)
            }
            #expect(got == ["one", "two"])
            await listener.close()
            await #expect(throws: StoreError.self) { try await db.listen(to: ["bad name; DROP"]) }
        }
    }
}
