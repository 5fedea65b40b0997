import FrameCore
import Foundation
@testable import FrameStore
import Testing

/// The failure policy and lease resumption, rule by rule, against a real PostgreSQL.
@Suite("Failure policy", .enabled(if: TestDatabase.enabled))
struct FailurePolicyTests {
    static let immediateRetry = LeasePolicy(ttl: .seconds(30), retryBaseDelay: .zero, retryMaxDelay: .zero)

    @Test("a failed segment goes to another eligible node, and back to its failer only when none is left")
    func avoidsTheNodeThatFailed() async throws {
        try await TestDatabase.withFresh { db, _ in
            let f = Fixtures(db: db)
            let job = try await f.job(for: try await f.user(), segments: 1, maxAttempts: 5)
            try await f.node("a")
            try await f.node("b")
            try await f.node("gpu-only", labels: ["gpu": "yes"])
            _ = try await f.nodes.setAdminState(name: "gpu-only", to: .draining)
            let leases = LeaseStore(database: db, policy: Self.immediateRetry)
            let first = try #require(try await leases.claim(node: "a", limit: 1).first)
            guard case .retrying = try await leases.fail(first.ref, node: "a", code: .decodeFailed, message: "x") else {
                Issue.record("no retry"); return
            }
            // b is online, enabled and has not failed it: a must not get it back.
            #expect(try await leases.claim(node: "a", limit: 1).isEmpty)
            let second = try #require(try await leases.claim(node: "b", limit: 1).first)
            #expect(second.ref.segment == first.ref.segment)
            #expect(try await f.jobs.segments(jobID: job.id).first?.failedNodes == ["a"])
            guard case .retrying = try await leases.fail(second.ref, node: "b", code: .decodeFailed, message: "x") else {
                Issue.record("no retry"); return
            }
            // Both failed it: nobody else is eligible (the other node is draining), so a may try again.
            #expect(try await leases.claim(node: "a", limit: 1).first?.ref.segment == first.ref.segment)
        }
    }

    @Test("the only eligible node gets its failed segment again; an offline node does not count")
    func onlyEligibleNodeRetries() async throws {
        try await TestDatabase.withFresh { db, _ in
            let f = Fixtures(db: db)
            _ = try await f.job(for: try await f.user(), segments: 1, maxAttempts: 5)
            try await f.node("a")
            try await f.node("gone")
            try await f.nodes.markOffline(name: "gone")
            let leases = LeaseStore(database: db, policy: Self.immediateRetry)
            let first = try #require(try await leases.claim(node: "a", limit: 1).first)
            _ = try await leases.fail(first.ref, node: "a", code: .decodeFailed, message: "x")
            let again = try #require(try await leases.claim(node: "a", limit: 1).first)
            #expect(again.ref.segment == first.ref.segment && again.attempt == 2)
        }
    }

    @Test("a segment the object store could not serve (OBJECT_STORE_UNAVAILABLE) costs no attempt, waits, and blames no node")
    func storeOutageIsNotAFailure() async throws {
        try await TestDatabase.withFresh { db, _ in
            let f = Fixtures(db: db)
            let job = try await f.job(for: try await f.user(), segments: 1, maxAttempts: 1)
            try await f.node("a")
            let leases = LeaseStore(database: db, policy: LeasePolicy(
                retryBaseDelay: .seconds(60), retryMaxDelay: .seconds(60), storeOutageDelay: .milliseconds(300)))
            // More outages than max_attempts (1): the job waits them out.
            for round in 1...3 {
                let g = try #require(try await leases.claim(node: "a", limit: 1).first)
                #expect(g.attempt == 1, "round \(round): the refunded attempt is granted again")
                let failedAt = Date()
                guard case .retrying(let notBefore, let attempts, _) = try await leases.fail(
                    g.ref, node: "a", code: .objectStoreUnavailable, message: "store away") else {
                    Issue.record("round \(round): an outage was not requeued"); return
                }
                #expect(attempts == 0)
                #expect(notBefore.timeIntervalSince(failedAt) > 0.2, "offered again only after storeOutageDelay")
                try await pollUntil(seconds: 5) { !(try await leases.claim(node: "a", limit: 1).isEmpty) }
                let again = try #require(try await leases.leases(node: "a").first)
                _ = try await leases.fail(again, node: "a", code: .shuttingDown, message: "put it back for the next round")
                try await Task.sleep(for: .milliseconds(600))
            }
            #expect(try #require(try await f.jobs.get(id: job.id)).status == .processing)
            let events = try await f.jobs.events(jobID: job.id)
            #expect(events.filter { $0.kind == .leaseRequeued && $0.reason == "OBJECT_STORE_UNAVAILABLE" }.count == 3)
            #expect(!events.contains { $0.kind == .segmentRetry || $0.kind == .nodeBlocklisted })
            #expect(try await f.nodes.get(name: "a")?.failures == 0)
        }
    }

    @Test("a hand-back (SHUTTING_DOWN) costs no attempt and no failure, and goes to another node first")
    func handBackIsNotAFailure() async throws {
        try await TestDatabase.withFresh { db, _ in
            let f = Fixtures(db: db)
            let job = try await f.job(for: try await f.user(), segments: 1, maxAttempts: 2)
            try await f.node("a")
            try await f.node("b")
            let leases = LeaseStore(database: db, policy: LeasePolicy(
                retryBaseDelay: .seconds(60), retryMaxDelay: .seconds(60), handbackDelay: .zero))
            // More hand-backs than max_attempts: none of them may fail the job or blocklist the node.
            for round in 1...4 {
                let g = try #require(try await leases.claim(node: "a", limit: 1).first)
                #expect(g.attempt == 1, "round \(round): the refunded attempt is granted again")
                guard case .retrying(_, let attempts, _) = try await leases.fail(
                    g.ref, node: "a", code: .shuttingDown, message: "no free slot") else {
                    Issue.record("round \(round): a hand-back was not requeued"); return
                }
                #expect(attempts == 0)
                if round == 1 {
                    // Another node is preferred for it, and it is leasable at once (no retry back-off).
                    #expect(try await leases.claim(node: "a", limit: 1).isEmpty)
                    let other = try #require(try await leases.claim(node: "b", limit: 1).first)
                    _ = try await leases.fail(other.ref, node: "b", code: .shuttingDown, message: "draining")
                }
            }
            let record = try #require(try await f.jobs.get(id: job.id))
            #expect(record.status == .processing)
            let events = try await f.jobs.events(jobID: job.id)
            #expect(events.filter { $0.kind == .leaseRequeued && $0.reason == "SHUTTING_DOWN" }.count == 5)
            #expect(!events.contains { $0.kind == .segmentRetry || $0.kind == .nodeBlocklisted })
            #expect(try await f.nodes.get(name: "a")?.recentFailures == 0)
            #expect(try await f.nodes.get(name: "a")?.failures == 0)
        }
    }

    @Test("three failures in one job blocklist the node for that job, with an event")
    func blocklistAfterThreeFailures() async throws {
        try await TestDatabase.withFresh { db, _ in
            let f = Fixtures(db: db)
            let user = try await f.user()
            let job = try await f.job(for: user, segments: 6, maxAttempts: 5)
            let other = try await f.job(for: user, segments: 2)
            try await f.node("bad")
            try await f.node("good")
            let leases = LeaseStore(database: db, policy: Self.immediateRetry)
            var failed: Set<UInt32> = []
            for _ in 0..<3 {
                let g = try #require(try await leases.claim(node: "bad", limit: 1).first { $0.ref.jobID == job.id })
                _ = try await leases.fail(g.ref, node: "bad", code: .decodeFailed, message: "bad node")
                failed.insert(g.ref.segment)
            }
            #expect(failed.count == 3)
            let events = try await f.jobs.events(jobID: job.id).filter { $0.kind == .nodeBlocklisted }
            #expect(events.count == 1 && events.first?.node == "bad")
            // Nothing more of this job for "bad"; other jobs are unaffected; "good" gets the rest.
            let afterwards = try await leases.claim(node: "bad", limit: 10)
            #expect(!afterwards.isEmpty && afterwards.allSatisfy { $0.ref.jobID == other.id })
            let good = try await leases.claim(node: "good", limit: 10)
            #expect(Set(good.map(\.ref.segment)) == Set(0..<6))
            #expect(try await f.jobs.get(id: job.id)?.status == .processing)
            #expect(try await f.nodes.get(name: "bad")?.recentFailures == 3)
            #expect(try await f.nodes.get(name: "good")?.recentFailures == 0)
        }
    }

    @Test("when every eligible node is blocklisted the job fails with NO_ELIGIBLE_NODE")
    func noEligibleNodeLeft() async throws {
        try await TestDatabase.withFresh { db, _ in
            let f = Fixtures(db: db)
            let job = try await f.job(for: try await f.user(), segments: 4, maxAttempts: 5)
            try await f.node("only")
            let leases = LeaseStore(database: db, policy: Self.immediateRetry)
            var last: FailureOutcome?
            for _ in 0..<3 {
                let g = try #require(try await leases.claim(node: "only", limit: 1).first)
                last = try await leases.fail(g.ref, node: "only", code: .decodeFailed, message: "x")
            }
            guard case .jobFailed(let failure?) = last else { Issue.record("job did not fail: \(String(describing: last))"); return }
            #expect(failure.code == .noEligibleNode && failure.message.contains("only"))
            let record = try #require(try await f.jobs.get(id: job.id))
            #expect(record.status == .failed && record.errorCode == .noEligibleNode)
        }
    }

    @Test("node deaths and decode errors are counted apart; too many deaths fail the job with NODES_LOST")
    func deathsCountedApart() async throws {
        try await TestDatabase.withFresh { db, _ in
            let f = Fixtures(db: db)
            let job = try await f.job(for: try await f.user(), segments: 1, maxAttempts: 2, maxNodeLosses: 3)
            try await f.node("a")
            let leases = LeaseStore(database: db, policy: Self.immediateRetry)
            // One decode error: attempts 1, no loss.
            let g1 = try #require(try await leases.claim(node: "a", limit: 1).first)
            _ = try await leases.fail(g1.ref, node: "a", code: .decodeFailed, message: "x")
            var seg = try #require(try await f.jobs.segments(jobID: job.id).first)
            #expect(seg.attempts == 1 && seg.nodeLosses == 0)
            // Two deaths (connection lost, lease expired): losses 2, attempts still 1, so more than
            // max_attempts grants happen without failing the job.
            _ = try #require(try await leases.claim(node: "a", limit: 1).first)
            _ = try await leases.requeue(node: "a", reason: "connection lost")
            let short = LeaseStore(database: db, policy: LeasePolicy(ttl: .milliseconds(1)))
            _ = try #require(try await short.claim(node: "a", limit: 1).first)
            try await Task.sleep(for: .milliseconds(50))
            #expect(try await short.expireOverdue().released.first?.nodeLosses == 2)
            seg = try #require(try await f.jobs.segments(jobID: job.id).first)
            #expect(seg.attempts == 1 && seg.nodeLosses == 2 && seg.state == .pending)
            // The third death reaches max_node_losses.
            _ = try #require(try await leases.claim(node: "a", limit: 1).first)
            let release = try await leases.requeue(node: "a", reason: "heartbeat timeout")
            #expect(release.released.first?.newState == .failed)
            #expect(release.failedJobs.first?.code == .nodesLost)
            let record = try #require(try await f.jobs.get(id: job.id))
            #expect(record.status == .failed && record.errorCode == .nodesLost)
        }
    }

    @Test("retry back-off doubles per attempt up to the cap, and claims wait for it")
    func backoffGrows() async throws {
        let policy = LeasePolicy(retryBaseDelay: .milliseconds(300), retryMaxDelay: .seconds(1))
        #expect(policy.retryDelay(afterAttempt: 1) == .milliseconds(300))
        #expect(policy.retryDelay(afterAttempt: 2) == .milliseconds(600))
        #expect(policy.retryDelay(afterAttempt: 3) == .seconds(1))
        try await TestDatabase.withFresh { db, _ in
            let f = Fixtures(db: db)
            _ = try await f.job(for: try await f.user(), segments: 1, maxAttempts: 5)
            try await f.node("a")
            let leases = LeaseStore(database: db, policy: policy)
            let g1 = try #require(try await leases.claim(node: "a", limit: 1).first)
            guard case .retrying(let nb1, _, _) = try await leases.fail(g1.ref, node: "a", code: .ioError, message: "x")
            else { Issue.record("no retry"); return }
            try await pollUntil(seconds: 5) { try await !leases.claim(node: "a", limit: 1).isEmpty }
            let g2 = try #require(try await leases.leases(node: "a").first)
            let failedAt = Date()
            guard case .retrying(let nb2, _, _) = try await leases.fail(g2, node: "a", code: .ioError, message: "x")
            else { Issue.record("no retry"); return }
            // The second wait is about twice the first.
            #expect(nb2.timeIntervalSince(failedAt) > 0.45)
            #expect(try await leases.claim(node: "a", limit: 1).isEmpty)
            _ = nb1
        }
    }

    @Test("a reconnecting node resumes its own leases under the same epoch, once, and only its own")
    func resume() async throws {
        try await TestDatabase.withFresh { db, _ in
            let f = Fixtures(db: db)
            let job = try await f.job(for: try await f.user(), segments: 3)
            try await f.node("a")
            try await f.node("b")
            let leases = LeaseStore(database: db)
            let held = try await leases.claim(node: "a", limit: 3)
            #expect(held.count == 3)
            // Held through the grace: still leased to a.
            let kept = try await leases.resume(node: "a", held: held.map(\.ref))
            #expect(kept.resumed.map(\.ref) == held.map(\.ref).sorted(by: LeaseStore.order))
            #expect(kept.released.isEmpty)
            // Requeued (the grace ran out), nobody claimed it yet: a may reclaim it, same epoch,
            // the node loss taken back. b may not resume a's lease.
            _ = try await leases.requeue(node: "a", reason: "connection lost")
            #expect(try await leases.resume(node: "b", held: held.map(\.ref)).resumed.isEmpty)
            let stolen = try #require(try await leases.claim(node: "b", limit: 1).first)
            let back = try await leases.resume(node: "a", held: held.map(\.ref)).resumed
            #expect(Set(back.map(\.ref)) == Set(held.map(\.ref).filter { $0.segment != stolen.ref.segment }))
            #expect(back.allSatisfy { $0.ref.epoch == 1 && $0.spec.sampleCount == 5 && $0.sourceExt == "mp4" })
            let segments = try await f.jobs.segments(jobID: job.id)
            for s in segments where s.index != stolen.ref.segment {
                #expect(s.state == .leased && s.node == "a" && s.epoch == 1 && s.nodeLosses == 0 && s.attempts == 1)
            }
            // Leases the node does not offer again are handed back, uncharged.
            let dropped = try await leases.resume(node: "a", held: [back[0].ref])
            #expect(dropped.released.released.map(\.lease.ref) == Array(back.dropFirst().map(\.ref)))
            #expect(dropped.released.released.allSatisfy { $0.nodeLosses == 0 })
            _ = try await leases.resume(node: "a", held: back.map(\.ref))
            // The stale epoch of the stolen segment is not resumable, and results under it stay fenced.
            guard case .stale = try await leases.complete(LeaseRef(jobID: job.id, segment: stolen.ref.segment, epoch: 1), node: "a")
            else { Issue.record("stale completion accepted"); return }
            // Completed twice: counted once.
            let one = try #require(back.first)
            guard case .accepted = try await leases.complete(one.ref, node: "a") else { Issue.record("refused"); return }
            guard case .stale = try await leases.complete(one.ref, node: "a") else { Issue.record("double count"); return }
            #expect(try await f.jobs.get(id: job.id)?.framesDone == 5)
            let events = try await f.jobs.events(jobID: job.id)
            #expect(events.filter { $0.kind == .leaseResumed }.count == held.count + 2 * back.count + 1)
            #expect(events.filter { $0.kind == .leaseGranted && $0.segment == one.ref.segment }.count == 1)
        }
    }

    @Test("a lease offered on reconnect after another node claimed it is refused, with a fence event")
    func movedOnLeaseIsFencedAtResume() async throws {
        try await TestDatabase.withFresh { db, _ in
            let f = Fixtures(db: db)
            let job = try await f.job(for: try await f.user(), segments: 1)
            try await f.node("island")
            try await f.node("mainland")
            let leases = LeaseStore(database: db)
            let old = try #require(try await leases.claim(node: "island", limit: 1).first)
            _ = try await leases.requeue(node: "island", reason: "heartbeat timeout")
            let taken = try #require(try await leases.claim(node: "mainland", limit: 1).first)
            #expect(taken.ref.epoch == old.ref.epoch + 1)
            let answer = try await leases.resume(node: "island", held: [old.ref])
            #expect(answer.resumed.isEmpty)
            let fenced = try await f.jobs.events(jobID: job.id).filter { $0.kind == .fenced }
            #expect(fenced.count == 1)
            #expect(fenced.first?.node == "island" && fenced.first?.epoch == old.ref.epoch)
            #expect((fenced.first?.reason ?? "").contains("offered on reconnect"))
            #expect(try await f.jobs.segments(jobID: job.id).first?.node == "mainland")
        }
    }
}

/// Polls `condition` until it holds (store tests have no TestCluster).
func pollUntil(seconds: Double, _ condition: () async throws -> Bool) async throws {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(50))
    }
    Issue.record("condition not met within \(seconds) s")
}
