import FrameCore
import Foundation
@testable import FrameStore
import Testing

/// One node's non-retryable verdict does not fail a job while another node
/// could try the segment (proto-spec/leases.md, "Failure policy").
@Suite("Verdict confirmation", .enabled(if: TestDatabase.enabled))
struct VerdictConfirmationTests {
    static let policy = LeasePolicy(ttl: .seconds(30), retryBaseDelay: .zero, retryMaxDelay: .zero)

    @Test("a CORRUPT_MEDIA verdict goes to a second node; the job fails only when it agrees")
    func confirmedBySecondNode() async throws {
        try await TestDatabase.withFresh { db, _ in
            let f = Fixtures(db: db)
            let job = try await f.job(for: try await f.user(), segments: 2, maxAttempts: 3)
            try await f.node("a")
            try await f.node("b")
            let leases = LeaseStore(database: db, policy: Self.policy)
            let first = try #require(try await leases.claim(node: "a", limit: 1).first)
            let outcome = try await leases.fail(first.ref, node: "a", code: .corruptMedia, message: "invalid NAL unit")
            #expect(outcome == .awaitingConfirmation(verdict: .corruptMedia))
            #expect(try await f.jobs.get(id: job.id)?.status == .processing)
            // Not back to the node that said it; b gets it, with the attempt refunded.
            #expect(try await leases.claim(node: "a", limit: 2).allSatisfy { $0.ref.segment != first.ref.segment })
            let second = try #require(try await leases.claim(node: "b", limit: 2).first { $0.ref.segment == first.ref.segment })
            #expect(second.attempt == 1)
            guard case .jobFailed(let failure?) = try await leases.fail(
                second.ref, node: "b", code: .corruptMedia, message: "invalid NAL unit") else {
                Issue.record("a confirmed verdict did not fail the job"); return
            }
            #expect(failure.code == .corruptMedia)
            let record = try #require(try await f.jobs.get(id: job.id))
            #expect(record.status == .failed && record.errorCode == .corruptMedia)
            let events = try await f.jobs.events(jobID: job.id)
            #expect(events.filter { $0.kind == .verdictUnconfirmed }.map(\.node) == ["a"])
            #expect(events.contains { $0.kind == .segmentFailed && $0.node == "b" && ($0.detail ?? "").contains("node a") })
            #expect(try await f.nodes.get(name: "a")?.contradictedVerdicts == 0)
        }
    }

    @Test("a verdict another node contradicts by finishing the segment is counted against its node")
    func contradicted() async throws {
        try await TestDatabase.withFresh { db, _ in
            let f = Fixtures(db: db)
            let job = try await f.job(for: try await f.user(), segments: 1, maxAttempts: 3)
            try await f.node("liar")
            try await f.node("honest")
            let leases = LeaseStore(database: db, policy: Self.policy)
            let first = try #require(try await leases.claim(node: "liar", limit: 1).first)
            _ = try await leases.fail(first.ref, node: "liar", code: .unsupportedCodec, message: "no decoder")
            let second = try #require(try await leases.claim(node: "honest", limit: 1).first)
            guard case .accepted(let progress) = try await leases.complete(second.ref, node: "honest") else {
                Issue.record("not accepted"); return
            }
            #expect(progress.contradicted == "liar")
            #expect(progress.allSegmentsDone)
            #expect(try await f.nodes.get(name: "liar")?.contradictedVerdicts == 1)
            #expect(try await f.nodes.get(name: "honest")?.contradictedVerdicts == 0)
            // The unconfirmed verdict is one of the node's recent failures.
            #expect(try await f.nodes.get(name: "liar")?.recentFailures == 1)
            let events = try await f.jobs.events(jobID: job.id)
            #expect(events.contains { $0.kind == .verdictContradicted && $0.node == "liar" && $0.reason == "UNSUPPORTED_CODEC" })
        }
    }

    @Test("with no other eligible node the verdict stands at once")
    func onlyNode() async throws {
        try await TestDatabase.withFresh { db, _ in
            let f = Fixtures(db: db)
            let job = try await f.job(for: try await f.user(), segments: 1, maxAttempts: 3, labels: ["gpu": "yes"])
            try await f.node("only", labels: ["gpu": "yes"])
            try await f.node("gone", labels: ["gpu": "yes"])
            try await f.nodes.markOffline(name: "gone")
            try await f.node("no-gpu")  // online, but without the job's labels
            let leases = LeaseStore(database: db, policy: Self.policy)
            let g = try #require(try await leases.claim(node: "only", limit: 1).first)
            guard case .jobFailed(let failure?) = try await leases.fail(g.ref, node: "only", code: .corruptMedia, message: "x")
            else { Issue.record("expected the verdict to stand"); return }
            #expect(failure.code == .corruptMedia)
            #expect(try await f.jobs.get(id: job.id)?.status == .failed)
        }
    }

    @Test("the same node saying it again, when no other node is left, stands")
    func sameNodeAgain() async throws {
        try await TestDatabase.withFresh { db, _ in
            let f = Fixtures(db: db)
            let job = try await f.job(for: try await f.user(), segments: 1, maxAttempts: 3)
            try await f.node("a")
            try await f.node("b")
            let leases = LeaseStore(database: db, policy: Self.policy)
            let g = try #require(try await leases.claim(node: "a", limit: 1).first)
            #expect(try await leases.fail(g.ref, node: "a", code: .corruptMedia, message: "x") == .awaitingConfirmation(verdict: .corruptMedia))
            try await f.nodes.markOffline(name: "b")  // the confirmer went away
            let again = try #require(try await leases.claim(node: "a", limit: 1).first)
            guard case .jobFailed(let failure?) = try await leases.fail(again.ref, node: "a", code: .corruptMedia, message: "x")
            else { Issue.record("expected the verdict to stand"); return }
            #expect(failure.code == .corruptMedia)
            #expect(try await f.jobs.get(id: job.id)?.status == .failed)
        }
    }
}
