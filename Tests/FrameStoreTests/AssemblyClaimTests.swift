import FrameCore
import Foundation
@testable import FrameStore
import Testing

/// The per-segment slice rows (written with SEGMENT_DONE) and the assembly claim that lets any
/// coordinator assemble a job exactly once (docs/distributed-assembly.md).
@Suite("Assembly claim", .enabled(if: TestDatabase.enabled))
struct AssemblyClaimTests {
    /// A job of `segments` segments, all done on node "n", each with a slice row.
    static func finishedJob(_ f: Fixtures, segments: Int = 3) async throws -> JobRecord {
        let job = try await f.job(for: try await f.user(), segments: segments)
        let leases = LeaseStore(database: f.db)
        for g in try await leases.claim(node: "n", limit: 100) where g.ref.jobID == job.id {
            let slice = SegmentSliceRecord(
                segment: g.ref.segment, epoch: g.ref.epoch, key: "parts/\(job.id)/\(g.ref.segment)-\(g.ref.epoch).zipslice",
                length: 100 + Int64(g.ref.segment), entriesJSON: #"[{"name":"frame_\#(g.ref.segment).jpg"}]"#)
            guard case .accepted = try await leases.complete(g.ref, node: "n", slice: slice) else {
                Issue.record("segment \(g.ref.segment) not accepted"); continue
            }
        }
        return job
    }

    @Test("a slice row is written with its segment's completion, under the accepted epoch only")
    func sliceRowsGoWithCompletion() async throws {
        try await TestDatabase.withFresh { db, _ in
            let f = Fixtures(db: db)
            try await f.node("n")
            try await f.node("m")
            let job = try await f.job(for: try await f.user(), segments: 2)
            let leases = LeaseStore(database: db)
            let grants = try await leases.claim(node: "n", limit: 2)
            let first = try #require(grants.first { $0.ref.segment == 0 })
            let slice = SegmentSliceRecord(segment: 0, epoch: first.ref.epoch, key: "parts/x/0-1.zipslice", length: 42, entriesJSON: "[]")
            // A slice that is not this lease's is refused outright.
            var wrong = slice
            wrong.epoch += 1
            await #expect(throws: StoreError.self) { _ = try await leases.complete(first.ref, node: "n", slice: wrong) }
            // A stale completion (another node's claim of the lease) writes no row.
            guard case .stale = try await leases.complete(first.ref, node: "m", slice: slice) else {
                Issue.record("a completion by a node that does not hold the lease must be stale"); return
            }
            #expect(try await f.jobs.segmentSlices(jobID: job.id).isEmpty)
            guard case .accepted = try await leases.complete(first.ref, node: "n", slice: slice) else {
                Issue.record("the holder's completion must be accepted"); return
            }
            #expect(try await f.jobs.segmentSlices(jobID: job.id) == [slice])
        }
    }

    @Test("one claimer at a time; an expired claim is taken over, with the abandoned upload to abort")
    func claimIsExclusiveAndTakenOverWhenExpired() async throws {
        try await TestDatabase.withFresh { db, _ in
            let f = Fixtures(db: db)
            try await f.node("n")
            let unfinished = try await f.job(for: try await f.user(), segments: 2)
            #expect(try await f.jobs.claimAssembly(id: unfinished.id, claimer: "c1", ttl: .seconds(30)) == nil,
                    "a job with segments left cannot be claimed")
            let job = try await Self.finishedJob(f)
            #expect(try await f.jobs.segmentSlices(jobID: job.id).map(\.segment) == [0, 1, 2])

            let claim = try #require(try await f.jobs.claimAssembly(id: job.id, claimer: "c1", ttl: .seconds(30)))
            #expect(claim.tookOverFrom == nil && claim.abandonedUploadID == nil)
            #expect(try await f.jobs.claimAssembly(id: job.id, claimer: "c2", ttl: .seconds(30)) == nil)
            #expect(try await f.jobs.claimAssemblies(claimer: "c2", ttl: .seconds(30)).isEmpty)
            #expect(try await f.jobs.renewAssemblyClaim(id: job.id, claimer: "c1", ttl: .seconds(30), uploadID: "upload-1"))

            // c1 stops renewing (it died): once the claim expires c2 takes it, and learns c1's upload.
            // The expiry is set in the past here rather than waited for: a short TTL raced the checks
            // above on a loaded machine.
            try await db.withConnection { conn in
                _ = try conn.query(
                    "UPDATE jobs SET assembly_claim_expires_at = now() - interval '1 millisecond' WHERE id = $1::uuid",
                    job.id)
            }
            let takeover = try #require(try await f.jobs.claimAssemblies(claimer: "c2", ttl: .seconds(30)).first)
            #expect(takeover.jobID == job.id && takeover.tookOverFrom == "c1" && takeover.abandonedUploadID == "upload-1")
            #expect(try await f.jobs.renewAssemblyClaim(id: job.id, claimer: "c1", ttl: .seconds(30)) == false)
            await #expect(throws: StoreError.self) {
                _ = try await f.jobs.completeAssembly(id: job.id, claimer: "c1", expiresAt: nil)
            }
            let done = try await f.jobs.completeAssembly(id: job.id, claimer: "c2", expiresAt: nil)
            #expect(done.status == .completed)
            #expect(try await f.jobs.claimAssembly(id: job.id, claimer: "c1", ttl: .seconds(30)) == nil)
            let events = try await f.jobs.events(jobID: job.id).filter { $0.kind == .assemblyClaimed }
            #expect(events.map(\.node) == ["c1", "c2"])
        }
    }

    @Test("a dead coordinator's slice-assembly claim ends with the take-over: a survivor claims at once, not after the TTL")
    func deadClaimerIsTakenOver() async throws {
        try await TestDatabase.withFresh { db, _ in
            let f = Fixtures(db: db)
            try await f.node("n")
            let job = try await Self.finishedJob(f, segments: 1)
            let other = try await Self.finishedJob(f, segments: 1)
            let store = CoordinatorStore(database: db)
            try await store.announce(id: "A", httpAddress: "", clusterAddress: "", ttl: .seconds(60))
            try await store.announce(id: "B", httpAddress: "", clusterAddress: "", ttl: .seconds(60))
            // A claims both, records an upload for one, and dies with a claim good for ten minutes.
            _ = try #require(try await f.jobs.claimAssembly(id: job.id, claimer: "A", ttl: .seconds(600)))
            _ = try #require(try await f.jobs.claimAssembly(id: other.id, claimer: "A", ttl: .seconds(600)))
            #expect(try await f.jobs.renewAssemblyClaim(id: job.id, claimer: "A", ttl: .seconds(600), uploadID: "upload-a"))
            #expect(try await f.jobs.claimAssembly(id: job.id, claimer: "B", ttl: .seconds(60)) == nil, "A is alive")
            try await store.expire(ids: ["A"])
            let takeover = try await store.takeOverExpired(by: "B")
            #expect(Set(takeover.assemblyClaimsEnded) == [job.id, other.id])
            let claim = try #require(try await f.jobs.claimAssembly(id: job.id, claimer: "B", ttl: .seconds(60)))
            #expect(claim.tookOverFrom == "A" && claim.abandonedUploadID == "upload-a")
            #expect(try await f.jobs.claimAssemblies(claimer: "B", ttl: .seconds(60)).map(\.jobID).contains(other.id))
            // A live coordinator's claims are left alone by a later pass.
            #expect(try await store.takeOverExpired(by: "B").assemblyClaimsEnded.isEmpty)
            #expect(try await f.jobs.claimAssembly(id: job.id, claimer: "C", ttl: .seconds(60)) == nil, "B holds it")
        }
    }

    @Test("a released claim can be claimed again at once")
    func releasedClaim() async throws {
        try await TestDatabase.withFresh { db, _ in
            let f = Fixtures(db: db)
            try await f.node("n")
            let job = try await Self.finishedJob(f, segments: 1)
            _ = try #require(try await f.jobs.claimAssembly(id: job.id, claimer: "c1", ttl: .seconds(30)))
            try await f.jobs.releaseAssemblyClaim(id: job.id, claimer: "c1")
            #expect(try await f.jobs.claimAssembly(id: job.id, claimer: "c2", ttl: .seconds(30)) != nil)
        }
    }

    @Test("concurrent sweeps of several coordinators claim each job exactly once")
    func concurrentSweeps() async throws {
        try await TestDatabase.withFresh(maxConnections: 8) { db, _ in
            let f = Fixtures(db: db)
            try await f.node("n")
            var ids: Set<UUID> = []
            for _ in 0..<6 { ids.insert(try await Self.finishedJob(f, segments: 1).id) }
            let jobs = f.jobs
            let claims = try await withThrowingTaskGroup(of: [AssemblyClaim].self) { group in
                for c in 0..<4 { group.addTask { try await jobs.claimAssemblies(claimer: "c\(c)", ttl: .seconds(30), limit: 10) } }
                var all: [AssemblyClaim] = []
                for try await part in group { all += part }
                return all
            }
            #expect(claims.count == 6)
            #expect(Set(claims.map(\.jobID)) == ids)
        }
    }

    @Test("one claim for both paths: a holder whose liveness row expired is taken over exactly once, and a buried one's claims lapse")
    func livenessAndTTLAreOneRule() async throws {
        try await TestDatabase.withFresh(maxConnections: 8) { db, _ in
            let f = Fixtures(db: db)
            try await f.node("n")
            let coordinators = CoordinatorStore(database: db)
            for id in ["A", "B", "C", "D"] {
                try await coordinators.announce(id: id, httpAddress: "", clusterAddress: "", ttl: .seconds(60))
            }
            let job = try await Self.finishedJob(f, segments: 1)
            // A holds a claim whose TTL is far off (a long assembly): only its death frees it.
            _ = try #require(try await f.jobs.claimAssembly(id: job.id, claimer: "A", ttl: .seconds(600)))
            #expect(try await f.jobs.renewAssemblyClaim(id: job.id, claimer: "A", ttl: .seconds(600), uploadID: "upload-A"))
            #expect(try await f.jobs.claimAssembly(id: job.id, claimer: "B", ttl: .seconds(60)) == nil, "A is alive")
            #expect(try await f.jobs.claimAssemblies(claimer: "C", ttl: .seconds(60)).isEmpty, "A is alive")

            // A's liveness row expires (it died): two survivors race, exactly one takes over.
            try await coordinators.expire(ids: ["A"])
            let jobs = f.jobs
            async let byB = jobs.claimAssembly(id: job.id, claimer: "B", ttl: .seconds(60))
            async let byC = jobs.claimAssemblies(claimer: "C", ttl: .seconds(60))
            let (b, c) = try await (byB, byC)
            let takeovers = [b].compactMap { $0 } + c
            #expect(takeovers.count == 1, "\(takeovers)")
            #expect(takeovers.first?.tookOverFrom == "A" && takeovers.first?.abandonedUploadID == "upload-A")
            let events = try await f.jobs.events(jobID: job.id).filter { $0.kind == .assemblyClaimed }
            #expect(events.map(\.node) == ["A", try #require(takeovers.first?.claimer)])

            // D dies and a survivor buries it (deletes its row): its claim lapses with the row, so
            // it is taken over at once, though its TTL is far off and no row says it is dead any more.
            let second = try await Self.finishedJob(f, segments: 1)
            _ = try #require(try await f.jobs.claimAssembly(id: second.id, claimer: "D", ttl: .seconds(600)))
            try await coordinators.expire(ids: ["D"])
            _ = try await coordinators.takeOverExpired(by: "B")
            #expect(!(try await coordinators.live().map(\.id).contains("D")))
            let afterBurial = try #require(try await f.jobs.claimAssembly(id: second.id, claimer: "B", ttl: .seconds(60)))
            #expect(afterBurial.tookOverFrom == "D")
        }
    }

    @Test("migration 12 leaves one set of assembly claim columns")
    func oneSetOfColumns() async throws {
        try await TestDatabase.withFresh { db, _ in
            let columns = try await db.withConnection { conn in
                try conn.query("""
                    SELECT column_name FROM information_schema.columns
                    WHERE table_name = 'jobs' AND (column_name LIKE 'assembl%')
                    ORDER BY column_name
                    """).rows.map { try $0.string("column_name") }
            }
            #expect(columns == ["assembly_claim_expires_at", "assembly_claimed_by", "assembly_upload_id"])
        }
    }
}
