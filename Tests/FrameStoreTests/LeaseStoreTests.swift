import FrameCore
import Foundation
@testable import FrameStore
import Testing

@Suite("LeaseStore", .enabled(if: TestDatabase.enabled))
struct LeaseStoreTests {
    static let immediateRetry = LeasePolicy(ttl: .seconds(30), retryBaseDelay: .zero, retryMaxDelay: .zero)

    @Test("concurrent claimers never receive the same segment; every grant bumps the epoch")
    func exclusiveClaims() async throws {
        try await TestDatabase.withFresh(maxConnections: 12) { db, _ in
            let f = Fixtures(db: db)
            let owner = try await f.user()
            for _ in 0..<3 { _ = try await f.job(for: owner, segments: 20) }
            let names = (0..<8).map { "node-\($0)" }
            for n in names { try await f.node(n) }
            let leases = LeaseStore(database: db)
            let grants = try await withThrowingTaskGroup(of: [GrantedLease].self) { group in
                for n in names {
                    group.addTask {
                        var mine: [GrantedLease] = []
                        while true {
                            let got = try await leases.claim(node: n, limit: 3)
                            if got.isEmpty { break }
                            mine += got
                        }
                        return mine
                    }
                }
                var all: [GrantedLease] = []
                for try await part in group { all += part }
                return all
            }
            #expect(grants.count == 60)
            let keys = Set(grants.map { "\($0.ref.jobID)/\($0.ref.segment)" })
            #expect(keys.count == 60, "a segment was granted twice")
            #expect(grants.allSatisfy { $0.ref.epoch == 1 && $0.attempt == 1 })
            #expect(grants.allSatisfy { $0.output.format == .jpeg && $0.sourceExt == "mp4" && $0.spec.sampleCount == 5 })
            // The lease rows agree with what the claimers were told.
            var held: [LeaseRef] = []
            for n in names { held += try await leases.leases(node: n) }
            #expect(held.count == 60 && Set(held) == Set(grants.map(\.ref)))

            // Requeue one node's leases and re-grant: the epoch moves on; the
            // death costs a node loss, not a decode attempt.
            let victim = names[0]
            let before = try await leases.leases(node: victim)
            let release = try await leases.requeue(node: victim, reason: "connection lost")
            #expect(release.released.count == before.count && release.released.allSatisfy { $0.newState == .pending })
            let regrants = try await leases.claim(node: "node-1", limit: 100)
            #expect(regrants.count == before.count)
            #expect(regrants.allSatisfy { $0.ref.epoch == 2 && $0.attempt == 1 })
            let jobs = try await f.jobs.list(userID: owner.id)
            #expect(jobs.allSatisfy { $0.status == .processing })
        }
    }

    @Test("a result under a stale epoch is refused and fenced; the current holder's is accepted")
    func staleEpoch() async throws {
        try await TestDatabase.withFresh { db, _ in
            let f = Fixtures(db: db)
            let job = try await f.job(for: try await f.user(), segments: 1)
            try await f.node("a")
            try await f.node("b")
            let leases = LeaseStore(database: db)
            let first = try #require(try await leases.claim(node: "a", limit: 1).first)
            _ = try await leases.requeue(node: "a", reason: "heartbeat timeout")
            let second = try #require(try await leases.claim(node: "b", limit: 1).first)
            #expect(second.ref.epoch == first.ref.epoch + 1)

            guard case .stale(let current) = try await leases.complete(first.ref, node: "a") else {
                Issue.record("stale completion accepted")
                return
            }
            #expect(current == SegmentSnapshot(state: .leased, epoch: second.ref.epoch, node: "b"))
            // Right epoch, wrong node is stale too.
            guard case .stale = try await leases.complete(second.ref, node: "a") else {
                Issue.record("completion from a non-holder accepted")
                return
            }
            guard case .stale = try await leases.fail(first.ref, node: "a", code: .decodeFailed, message: "x") else {
                Issue.record("stale failure accepted")
                return
            }
            guard case .accepted(let progress) = try await leases.complete(second.ref, node: "b") else {
                Issue.record("current completion refused")
                return
            }
            #expect(progress.allSegmentsDone && progress.framesDone == 5 && progress.frameCount == 5)
            // A duplicate SEGMENT_DONE is stale, not double-counted.
            guard case .stale = try await leases.complete(second.ref, node: "b") else {
                Issue.record("duplicate completion accepted")
                return
            }
            let events = try await f.jobs.events(jobID: job.id)
            #expect(events.filter { $0.kind == .fenced }.count == 4)
            #expect(events.contains { $0.kind == .fenced && $0.node == "a" && $0.epoch == first.ref.epoch })
            let done = try await f.jobs.markCompleted(id: job.id, expiresAt: Date().addingTimeInterval(3600))
            #expect(done.status == .completed && done.progress == 1 && done.completedAt != nil && done.expiresAt != nil)
        }
    }

    @Test("completing every segment reports the job done exactly once, even concurrently")
    func completion() async throws {
        try await TestDatabase.withFresh { db, _ in
            let f = Fixtures(db: db)
            let job = try await f.job(for: try await f.user(), segments: 6)
            try await f.node("a")
            let leases = LeaseStore(database: db)
            let granted = try await leases.claim(node: "a", limit: 10)
            #expect(granted.count == 6)
            await #expect(throws: StoreError.self) { _ = try await f.jobs.markCompleted(id: job.id) }
            let outcomes = try await withThrowingTaskGroup(of: CompletionOutcome.self) { group in
                for g in granted { group.addTask { try await leases.complete(g.ref, node: "a") } }
                var all: [CompletionOutcome] = []
                for try await o in group { all.append(o) }
                return all
            }
            let finals = outcomes.filter { if case .accepted(let p) = $0 { return p.allSegmentsDone }; return false }
            #expect(finals.count == 1)
            let record = try #require(try await f.jobs.get(id: job.id))
            #expect(record.framesDone == 30 && record.segmentsDone == 6 && record.status == .processing)
            #expect(try await f.jobs.segments(jobID: job.id).allSatisfy { $0.state == .done && $0.node == "a" })
        }
    }

    @Test("requeue on node loss returns the segments to pending with events")
    func requeueOnNodeLoss() async throws {
        try await TestDatabase.withFresh { db, _ in
            let f = Fixtures(db: db)
            let job = try await f.job(for: try await f.user(), segments: 3)
            try await f.node("lost")
            let leases = LeaseStore(database: db)
            #expect(try await leases.claim(node: "lost", limit: 3).count == 3)
            let release = try await leases.requeue(node: "lost", reason: "connection closed")
            #expect(release.released.count == 3 && release.failedJobs.isEmpty)
            #expect(release.released.allSatisfy { $0.lease.node == "lost" && $0.newState == .pending })
            let segments = try await f.jobs.segments(jobID: job.id)
            #expect(segments.allSatisfy { $0.state == .pending && $0.node == nil && $0.attempts == 0 && $0.nodeLosses == 1 })
            #expect(segments.allSatisfy { $0.lastErrorCode == .heartbeatTimeout })
            let events = try await f.jobs.events(jobID: job.id).filter { $0.kind == .leaseRequeued }
            #expect(events.count == 3 && events.allSatisfy { $0.node == "lost" && $0.reason == "connection closed" && $0.epoch == 1 })
            #expect(try await leases.requeue(node: "lost", reason: "again").isEmpty)
            // Not charging (e.g. coordinator shutdown) counts no node loss either.
            _ = try await leases.claim(node: "lost", limit: 3)
            _ = try await leases.requeue(node: "lost", reason: "shutdown", code: .shuttingDown, chargeAttempt: false)
            #expect(try await f.jobs.segments(jobID: job.id).allSatisfy { $0.attempts == 0 && $0.nodeLosses == 1 && $0.epoch == 2 })
        }
    }

    @Test("the reaper expires leases past their TTL; renewal keeps them")
    func reaper() async throws {
        try await TestDatabase.withFresh { db, _ in
            let f = Fixtures(db: db)
            let job = try await f.job(for: try await f.user(), segments: 2)
            try await f.node("slow")
            try await f.node("alive")
            // A TTL with room for a loaded machine: the suite runs beside CPU-heavy ones.
            let short = LeaseStore(database: db, policy: LeasePolicy(ttl: .seconds(3)))
            let slow = try #require(try await short.claim(node: "slow", limit: 1).first)
            let alive = try #require(try await short.claim(node: "alive", limit: 1).first)
            #expect(try await short.expireOverdue().isEmpty)
            for _ in 0..<4 {
                try await Task.sleep(for: .seconds(1))
                #expect(try await short.renew(node: "alive") == [alive.ref])
            }
            let release = try await short.expireOverdue()
            #expect(release.released.map(\.lease) == [HeldLease(ref: slow.ref, node: "slow")])
            #expect(release.released.first?.newState == .pending)
            let events = try await f.jobs.events(jobID: job.id).filter { $0.kind == .leaseExpired }
            #expect(events.count == 1 && events.first?.node == "slow" && events.first?.segment == slow.ref.segment)
            #expect(try await f.nodes.get(name: "slow")?.failures == 1)
            #expect(try await short.leases(node: "alive") == [alive.ref])
        }
    }

    @Test("failing the last attempt fails the job with ATTEMPTS_EXHAUSTED and cancels its other leases")
    func attemptsCap() async throws {
        try await TestDatabase.withFresh { db, _ in
            let f = Fixtures(db: db)
            let job = try await f.job(for: try await f.user(), segments: 2, maxAttempts: 2)
            try await f.node("a")
            try await f.node("b")
            let leases = LeaseStore(database: db, policy: Self.immediateRetry)
            let segA = try #require(try await leases.claim(node: "a", limit: 1).first)
            let segB = try #require(try await leases.claim(node: "b", limit: 1).first)
            // Attempt 1 of segment A fails on a; a node death in between costs no attempt;
            // attempt 2 (on b: a failed it and b is eligible) fails too.
            guard case .retrying(_, let attempts, let max) = try await leases.fail(
                segA.ref, node: "a", code: .decodeFailed, message: "boom") else {
                Issue.record("first retryable failure did not retry")
                return
            }
            #expect(attempts == 1 && max == 2)
            #expect(try await leases.claim(node: "a", limit: 1).isEmpty)
            let lost = try #require(try await leases.claim(node: "b", limit: 1).first)
            #expect(lost.ref.segment == segA.ref.segment && lost.attempt == 2)
            #expect(try await leases.requeue(node: "b", reason: "node crashed").released.count == 2)
            let mine = try await leases.claim(node: "b", limit: 2)
            let again = try #require(mine.first { $0.ref.segment == segA.ref.segment })
            let otherB = try #require(mine.first { $0.ref.segment == segB.ref.segment })
            #expect(again.attempt == 2)
            guard case .jobFailed(let failure?) = try await leases.fail(
                again.ref, node: "b", code: .decodeFailed, message: "boom again") else {
                Issue.record("last failure did not fail the job")
                return
            }
            #expect(failure.jobID == job.id && failure.code == .attemptsExhausted)
            #expect(failure.cancelledLeases == [HeldLease(ref: otherB.ref, node: "b")])
            let record = try #require(try await f.jobs.get(id: job.id))
            #expect(record.status == .failed && record.errorCode == .attemptsExhausted && record.completedAt != nil)
            #expect(try await leases.claim(node: "a", limit: 5).isEmpty)
            guard case .stale = try await leases.complete(otherB.ref, node: "b") else {
                Issue.record("completion accepted for a failed job")
                return
            }
        }
    }

    @Test("retryable failures use up attempts; the last one fails the job")
    func retryableExhaustion() async throws {
        try await TestDatabase.withFresh { db, _ in
            let f = Fixtures(db: db)
            let job = try await f.job(for: try await f.user(), segments: 1, maxAttempts: 3)
            try await f.node("a")
            let leases = LeaseStore(database: db, policy: Self.immediateRetry)
            for attempt in 1...3 {
                let g = try #require(try await leases.claim(node: "a", limit: 1).first)
                #expect(g.attempt == attempt && g.ref.epoch == UInt64(attempt))
                let outcome = try await leases.fail(g.ref, node: "a", code: .ioError, message: "read failed")
                if attempt < 3 {
                    guard case .retrying = outcome else { Issue.record("attempt \(attempt) did not retry"); return }
                } else {
                    guard case .jobFailed(let failure) = outcome else { Issue.record("last attempt did not fail"); return }
                    #expect(failure?.code == .attemptsExhausted)
                }
            }
            #expect(try await f.jobs.get(id: job.id)?.errorCode == .attemptsExhausted)
        }
    }

    @Test("a retry waits for its back-off (not_before)")
    func retryBackoff() async throws {
        try await TestDatabase.withFresh { db, _ in
            let f = Fixtures(db: db)
            _ = try await f.job(for: try await f.user(), segments: 1)
            try await f.node("a")
            // Long enough that a slow transaction on a loaded machine cannot eat the whole back-off.
            let leases = LeaseStore(database: db, policy: LeasePolicy(retryBaseDelay: .seconds(2)))
            let g = try #require(try await leases.claim(node: "a", limit: 1).first)
            guard case .retrying(let notBefore, _, _) = try await leases.fail(g.ref, node: "a", code: .ioError, message: "x")
            else { Issue.record("no retry"); return }
            #expect(notBefore > Date())
            #expect(try await leases.claim(node: "a", limit: 1).isEmpty)
            try await Task.sleep(for: .seconds(max(0, notBefore.timeIntervalSinceNow) + 0.2))
            #expect(try await leases.claim(node: "a", limit: 1).count == 1)
        }
    }

    @Test("a non-retryable failure fails the job at once with its own code")
    func nonRetryable() async throws {
        try await TestDatabase.withFresh { db, _ in
            let f = Fixtures(db: db)
            let job = try await f.job(for: try await f.user(), segments: 3, maxAttempts: 5)
            try await f.node("a")
            let leases = LeaseStore(database: db)
            let grants = try await leases.claim(node: "a", limit: 3)
            let outcome = try await leases.fail(grants[0].ref, node: "a", code: .corruptMedia, message: "invalid NAL unit")
            guard case .jobFailed(let failure) = outcome, let failure else {
                Issue.record("non-retryable failure did not fail the job: \(outcome)")
                return
            }
            #expect(failure.code == .corruptMedia)
            #expect(Set(failure.cancelledLeases.map(\.ref)) == Set(grants.dropFirst().map(\.ref)))
            let record = try #require(try await f.jobs.get(id: job.id))
            #expect(record.status == .failed && record.errorCode == .corruptMedia)
            #expect(record.errorMessage?.contains("invalid NAL unit") == true)
            let states = try await f.jobs.segments(jobID: job.id).map(\.state)
            #expect(states == [.failed, .cancelled, .cancelled])
            let statusEvents = try await f.jobs.events(jobID: job.id).filter { $0.kind == .status }.compactMap(\.detail)
            #expect(statusEvents == ["QUEUED->PROCESSING", "PROCESSING->FAILED"])
            let statusNodes = try await f.jobs.events(jobID: job.id).filter { $0.kind == .status }.map(\.node)
            #expect(statusNodes == ["a", "a"])
        }
    }

    @Test("claims are fair across users and interleave within one claim")
    func fairness() async throws {
        try await TestDatabase.withFresh { db, _ in
            let f = Fixtures(db: db)
            let alice = try await f.user()
            let bob = try await f.user()
            let carol = try await f.user()
            let aliceJob = try await f.job(for: alice, segments: 10)
            let aliceJob2 = try await f.job(for: alice, segments: 10)
            let bobJob = try await f.job(for: bob, segments: 10)
            try await f.node("n")
            let leases = LeaseStore(database: db)
            // Alice's jobs are older, but one claim of 4 is shared 2/2.
            let first = try await leases.claim(node: "n", limit: 4)
            #expect(first.filter { $0.userID == alice.id }.count == 2)
            #expect(first.filter { $0.userID == bob.id }.count == 2)
            // Within a user, the oldest job goes first.
            #expect(first.filter { $0.userID == alice.id }.allSatisfy { $0.ref.jobID == aliceJob.id })
            #expect(first.filter { $0.userID == bob.id }.allSatisfy { $0.ref.jobID == bobJob.id })
            // A newcomer with nothing leased is served before the others.
            let carolJob = try await f.job(for: carol, segments: 10)
            let second = try await leases.claim(node: "n", limit: 2)
            #expect(second.allSatisfy { $0.ref.jobID == carolJob.id })
            // Users with 2 leased each vs carol with 2: a claim of 3 gives one each.
            let third = try await leases.claim(node: "n", limit: 3)
            #expect(Set(third.map(\.userID)) == [alice.id, bob.id, carol.id])
            _ = aliceJob2
        }
    }

    @Test("labels, draining and revoked nodes restrict grants")
    func eligibility() async throws {
        try await TestDatabase.withFresh { db, _ in
            let f = Fixtures(db: db)
            let user = try await f.user()
            let gpuJob = try await f.job(for: user, segments: 2, labels: ["gpu": "yes"])
            try await f.node("plain")
            try await f.node("gpu", labels: ["gpu": "yes", "zone": "a"])
            try await f.node("drained", labels: ["gpu": "yes"])
            _ = try await f.nodes.setAdminState(name: "drained", to: .draining)
            let leases = LeaseStore(database: db)
            #expect(try await leases.claim(node: "plain", limit: 5).isEmpty)
            #expect(try await leases.claim(node: "drained", limit: 5).isEmpty)
            #expect(try await leases.claim(node: "unregistered", limit: 5).isEmpty)
            let got = try await leases.claim(node: "gpu", limit: 5)
            #expect(got.count == 2 && got.allSatisfy { $0.ref.jobID == gpuJob.id })
        }
    }

    @Test("cancel cancels open segments, returns live leases and is refused once finished")
    func cancel() async throws {
        try await TestDatabase.withFresh { db, _ in
            let f = Fixtures(db: db)
            let job = try await f.job(for: try await f.user(), segments: 4)
            try await f.node("a")
            try await f.node("b")
            let leases = LeaseStore(database: db)
            let ga = try await leases.claim(node: "a", limit: 1)
            let gb = try await leases.claim(node: "b", limit: 1)
            guard case .accepted = try await leases.complete(ga[0].ref, node: "a") else {
                Issue.record("completion refused")
                return
            }
            let outcome = try await f.jobs.cancel(id: job.id, reason: "user asked")
            #expect(outcome.previousStatus == .processing && outcome.job.status == .cancelled)
            #expect(outcome.cancelledLeases == [HeldLease(ref: gb[0].ref, node: "b")])
            #expect(try await f.jobs.segments(jobID: job.id).map(\.state) == [.done, .cancelled, .cancelled, .cancelled])
            #expect(try await leases.claim(node: "a", limit: 5).isEmpty)
            guard case .stale = try await leases.complete(gb[0].ref, node: "b") else {
                Issue.record("completion accepted after cancel")
                return
            }
            do {
                _ = try await f.jobs.cancel(id: job.id)
                Issue.record("second cancel accepted")
            } catch let error as StoreError {
                #expect(error.code == .invalidJobState)
            }
            do {
                _ = try await f.jobs.cancel(id: UUID())
                Issue.record("cancel of unknown job accepted")
            } catch let error as StoreError {
                #expect(error.code == .notFound)
            }
            #expect(try await f.jobs.fail(id: job.id, code: .archiveFailed, message: "x") == nil)
            // Finished jobs can expire.
            #expect(try await f.jobs.markExpired(id: job.id))
            #expect(try await f.jobs.get(id: job.id)?.status == .expired)
        }
    }

    @Test("cancelling while nodes claim leaves no live lease on the cancelled job")
    func cancelRacesClaims() async throws {
        try await TestDatabase.withFresh(maxConnections: 10) { db, _ in
            let f = Fixtures(db: db)
            let user = try await f.user()
            let jobs = try await withThrowingTaskGroup(of: JobRecord.self) { group in
                for _ in 0..<6 { group.addTask { try await f.job(for: user, segments: 8) } }
                var all: [JobRecord] = []
                for try await j in group { all.append(j) }
                return all
            }
            for n in 0..<4 { try await f.node("n\(n)") }
            let leases = LeaseStore(database: db)
            let cancelled = try await withThrowingTaskGroup(of: [HeldLease].self) { group in
                for n in 0..<4 {
                    group.addTask {
                        for _ in 0..<6 { _ = try await leases.claim(node: "n\(n)", limit: 2) }
                        return []
                    }
                }
                for job in jobs.prefix(3) {
                    group.addTask { try await f.jobs.cancel(id: job.id).cancelledLeases }
                }
                var all: [HeldLease] = []
                for try await part in group { all += part }
                return all
            }
            for job in jobs.prefix(3) {
                let segments = try await f.jobs.segments(jobID: job.id)
                #expect(segments.allSatisfy { $0.state == .cancelled }, "job \(job.id) still has open segments")
                let live = cancelled.filter { $0.ref.jobID == job.id }
                #expect(live.allSatisfy { l in segments.contains { $0.index == l.ref.segment && $0.epoch == l.ref.epoch } })
            }
            for job in jobs.dropFirst(3) {
                #expect(try await f.jobs.get(id: job.id)?.status.isSchedulable == true)
            }
        }
    }

    @Test("a job and its segments round-trip; expiry and listing")
    func jobRecords() async throws {
        try await TestDatabase.withFresh { db, _ in
            let f = Fixtures(db: db)
            let user = try await f.user()
            let job = try await f.job(for: user, segments: 3)
            #expect(job.status == .queued && job.frameCount == 15 && job.segmentCount == 3 && job.framesDone == 0)
            #expect(job.fps == Rational(1, 1) && job.output == OutputOptions(format: .jpeg, quality: 3))
            let segments = try await f.jobs.segments(jobID: job.id)
            #expect(segments.map(\.spec) == Fixtures.specs(3))
            #expect(segments.allSatisfy { $0.state == .pending && $0.epoch == 0 })
            #expect(try await f.jobs.list(userID: user.id).map(\.id) == [job.id])
            #expect(try await f.jobs.list(userID: UUID()).isEmpty)
            #expect(try await f.jobs.activeCount(userID: user.id) == 1)
            #expect(try await f.jobs.events(jobID: job.id).map(\.kind) == [.created])
            _ = try await f.jobs.fail(id: job.id, code: .archiveFailed, message: "disk full")
            try await f.jobs.setExpiry(id: job.id, at: Date().addingTimeInterval(-1))
            #expect(try await f.jobs.dueForExpiry() == [job.id])
            await #expect(throws: StoreError.self) {
                _ = try await f.jobs.create(NewJob(
                    userID: user.id, originalFilename: "a", ext: "mp4", sizeBytes: 1, fps: Rational(1, 1),
                    output: OutputOptions(), segments: []))
            }
        }
    }
}
