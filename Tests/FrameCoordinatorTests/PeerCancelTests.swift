import FrameCore
import FrameNode
import FrameStore
import FrameWire
import Foundation
import FrameTestSupport
import Testing
@testable import FrameCoordinator

/// A job cancelled through one coordinator reaches the nodes of another on the same database:
/// they get CANCEL within a second or so (told by the change feed's LISTEN/NOTIFY), not when
/// their frames are refused or a lease times out.
@Suite(.serialized, .timeLimit(.minutes(3))) struct PeerCancelTests {
    /// A node that takes leases and holds them (never decodes), recording the CANCELs it gets.
    actor HoldingRunner: LeaseRunner {
        private(set) var leases: [LeaseRef] = []
        private(set) var cancels: [Cancel] = []
        func attach(send: @escaping @Sendable (Message) async throws -> Void, resumed: [LeaseRef]) {}
        func detach() {}
        func drain() {}
        func run() async {}
        func heldLeases() -> [LeaseRef] { leases.filter { ref in !cancels.contains { $0.lease == ref } } }
        func figures() -> (activeLeases: Int, framesTotal: UInt64) { (heldLeases().count, 0) }
        func handle(_ message: Message) {
            switch message {
            case .lease(let lease): leases.append(lease.lease)
            case .cancel(let cancel): cancels.append(cancel)
            default: break
            }
        }
    }

    @Test func aCancelThroughOneCoordinatorStopsTheLeasesOfAnothersNodes() async throws {
        // Leases of 60 s: a CANCEL seconds after the cancel cannot be the lease running out.
        let ttl = ["coordinator.lease_ttl=60s"]
        let url = try await TestDatabase.create()
        let a = try await PipelineTests.makeHarness(extra: ttl, databaseURL: url)
        let b = try await PipelineTests.makeHarness(extra: ttl, databaseURL: url)
        defer { try? FileManager.default.removeItem(at: a.dir); try? FileManager.default.removeItem(at: b.dir) }
        let runner = HoldingRunner()
        let node = try PipelineTests.startAgent(b, name: "peer-b-node", slots: 2, runner: runner)
        defer { node.cancel() }
        try await TestCluster.eventually("the node connected to B") {
            await b.service.registry.liveNodes().map(\.name).contains("peer-b-node")
        }
        // Submitted through A (which has no node); B's node leases its segments.
        let video = try Fixtures.video(seconds: 6, name: "peercancel.mp4")
        let job = try await PipelineTests.submit(a, video: video, rate: Rational(1, 1))
        try await TestCluster.eventually(timeout: .seconds(30), "B's node holds the job's leases") {
            await runner.leases.filter { $0.jobID == job.id }.count == 2
        }
        // As if frames had been spooled on B: its spool for the job must go with the cancel.
        let spool = b.service.layout.spoolDirectory(job.id)
        try FileManager.default.createDirectory(at: spool, withIntermediateDirectories: true)
        try Data("frame".utf8).write(to: spool.appendingPathComponent("0.png"))

        let cancelled = ContinuousClock.now
        let outcome = try await #require(a.service.scheduler).cancel(jobID: job.id)
        #expect(outcome.job.status == .cancelled)
        try await TestCluster.eventually(timeout: .seconds(10), "B's node got CANCEL for every lease it held") {
            Set(await runner.cancels.map(\.lease)) == Set(await runner.leases.filter { $0.jobID == job.id })
        }
        let waited = ContinuousClock.now - cancelled
        print("PeerCancelTests: CANCEL reached the other coordinator's node \(waited.milliseconds) ms after the cancel")
        #expect(waited < .seconds(10), "\(waited)")
        #expect(await runner.cancels.allSatisfy { $0.reason == ErrorCode.cancelled.rawValue })
        try await TestCluster.eventually("B dropped its spool for the job") { !FileManager.default.fileExists(atPath: spool.path) }

        let jobs = JobStore(database: a.database)
        let record = try #require(try await jobs.get(id: job.id))
        #expect(record.status == .cancelled && record.segmentsDone == 0)
        #expect(try await jobs.segments(jobID: job.id).allSatisfy { $0.state != .done })
        // B freed the node's slots: the next job's segments go to it at once.
        let next = try await PipelineTests.submit(a, video: video, rate: Rational(1, 1))
        try await TestCluster.eventually(timeout: .seconds(15), "B's node leases the next job") {
            await runner.leases.filter { $0.jobID == next.id }.count == 2
        }
        await a.stop()
        await b.stop()
    }

    /// A coordinator keeps no spool for a job another one completed: frames of leases it lost
    /// to a take-over would otherwise stay on its disk until it restarts.
    @Test func aJobCompletedThroughAnotherCoordinatorLeavesNoSpoolHere() async throws {
        let url = try await TestDatabase.create()
        let a = try await PipelineTests.makeHarness(databaseURL: url)
        let b = try await PipelineTests.makeHarness(databaseURL: url)
        defer { try? FileManager.default.removeItem(at: a.dir); try? FileManager.default.removeItem(at: b.dir) }
        let node = try PipelineTests.startAgent(a, name: "peer-a-node", slots: 2)
        defer { node.cancel() }
        try await TestCluster.eventually("the node connected to A") {
            await a.service.registry.liveNodes().map(\.name).contains("peer-a-node")
        }
        let video = try Fixtures.video(seconds: 4, name: "peercomplete.mp4")
        let job = try await PipelineTests.submit(a, video: video, rate: Rational(1, 1))
        // As if B had spooled frames of a lease it then lost: they must go once the job is done.
        let spool = b.service.layout.spoolDirectory(job.id)
        try FileManager.default.createDirectory(at: spool, withIntermediateDirectories: true)
        try Data("frame".utf8).write(to: spool.appendingPathComponent("0.png"))
        let done = try await PipelineTests.waitForStatus(a, job.id, [.completed, .failed])
        #expect(done.status == .completed)
        try await TestCluster.eventually(timeout: .seconds(10), "B dropped its spool for the completed job") {
            !FileManager.default.fileExists(atPath: spool.path)
        }
        await a.stop()
        await b.stop()
    }
}
