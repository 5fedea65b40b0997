import FrameCore
import FrameNode
import FrameStore
import FrameWire
import Foundation
import FrameTestSupport
import Testing
@testable import FrameCoordinator

/// A ``LeaseRunner`` that keeps every lease it is given until the test lets
/// it go, and reports them in its heartbeats: a node busy with segments.
actor HoldingLeaseRunner: LeaseRunner {
    private var send: (@Sendable (Message) async throws -> Void)?
    private(set) var held: [LeaseRef] = []
    private(set) var granted = 0

    func attach(send: @escaping @Sendable (Message) async throws -> Void, resumed: [LeaseRef]) { self.send = send }
    func detach() { send = nil }
    func drain() {}
    func run() async {}
    func heldLeases() -> [LeaseRef] { [] }
    func figures() -> (activeLeases: Int, framesTotal: UInt64) { (held.count, 0) }

    func handle(_ message: Message) async {
        switch message {
        case .lease(let lease):
            held.append(lease.lease)
            granted += 1
        case .cancel(let cancel):
            held.removeAll { $0 == cancel.lease }
        default:
            break
        }
    }

    /// Ends every held segment (as a retryable failure: this runner decodes nothing).
    func finishAll() async {
        let refs = held
        held = []
        for ref in refs {
            try? await send?(.segmentFailed(SegmentFailed(
                lease: ref, code: ErrorCode.shuttingDown.rawValue, retryable: true, message: "released by the test")))
        }
    }
}

/// Operator actions on live nodes: drain finishes, then says so; labels route jobs.
@Suite(.serialized, .timeLimit(.minutes(5))) struct NodeOperationsTests {
    static func state(_ h: PipelineTests.Harness, _ name: String) async throws -> String? {
        try await h.service.registry.statuses().first { $0.name == name }?.state
    }

    @Test func drainFinishesCurrentSegmentsThenSaysSo() async throws {
        let h = try await PipelineTests.makeHarness()
        let runner = HoldingLeaseRunner()
        let agent = try PipelineTests.startAgent(h, name: "drain-a", slots: 1, runner: runner)
        defer { agent.cancel() }
        let video = try Fixtures.video(seconds: 8, name: "drain.mp4")
        let job = try await PipelineTests.submit(h, video: video, rate: Rational(1, 1))
        try await TestCluster.eventually(timeout: .seconds(30), "the node holds a lease") { await runner.held.count == 1 }
        try await TestCluster.eventually(timeout: .seconds(10), "a heartbeat reporting the lease") {
            try await h.service.registry.statuses().first { $0.name == "drain-a" }?.activeLeases == 1
        }

        #expect(try await h.service.registry.drain("drain-a"))
        // Several heartbeats later it still holds its segment: draining, not drained.
        try await Task.sleep(for: .seconds(2.5))
        #expect(try await Self.state(h, "drain-a") == "draining")
        #expect(await h.service.registry.drainedAt("drain-a") == nil)

        let finished = ContinuousClock.now
        await runner.finishAll()
        try await TestCluster.eventually(timeout: .seconds(10), "the node reported drained") {
            try await Self.state(h, "drain-a") == "drained"
        }
        let saidSo = ContinuousClock.now - finished
        print("measured: drain reported after the last segment in \(String(format: "%.2f", Double(saidSo.components.seconds) + Double(saidSo.components.attoseconds) / 1e18)) s")
        // It took no new segment although the job still has pending ones.
        try await Task.sleep(for: .seconds(1.5))
        #expect(await runner.granted == 1)
        #expect(await runner.held.isEmpty)
        #expect(try await JobStore(database: h.database).get(id: job.id)?.status != .completed)

        // Enabled again, it takes work and is no longer drained.
        #expect(try await h.service.registry.enable("drain-a"))
        try await TestCluster.eventually(timeout: .seconds(30), "work after enable") { await runner.granted > 1 }
        #expect(try await Self.state(h, "drain-a") == "online")
        await h.stop()
    }

    @Test func jobWithALabelNoNodeHasWaitsForSuchANode() async throws {
        let h = try await PipelineTests.makeHarness()
        let plain = try PipelineTests.startAgent(h, name: "label-plain", labels: "region=eu")
        defer { plain.cancel() }
        try await TestCluster.eventually("plain node connected") {
            await h.service.registry.liveNodes().contains { $0.name == "label-plain" }
        }
        let video = try Fixtures.video(seconds: 4, name: "labels.mp4")
        let needsGPU = try await PipelineTests.submit(h, video: video, rate: Rational(1, 1), labels: ["gpu": "yes"])
        let anyNode = try await PipelineTests.submit(h, video: video, rate: Rational(1, 1))
        let other = try await PipelineTests.waitForStatus(h, anyNode.id, [.completed, .failed])
        #expect(other.status == .completed)
        let waiting = try await JobStore(database: h.database).get(id: needsGPU.id)
        #expect(waiting?.status == .queued)
        #expect(waiting?.labelRequirement == ["gpu": "yes"])

        let gpu = try PipelineTests.startAgent(h, name: "label-gpu", labels: "gpu=yes,region=eu")
        defer { gpu.cancel() }
        let done = try await PipelineTests.waitForStatus(h, needsGPU.id, [.completed, .failed])
        #expect(done.status == .completed)
        let nodes = Set(try await JobStore(database: h.database).segments(jobID: needsGPU.id).compactMap(\.node))
        #expect(nodes == ["label-gpu"])
        await h.stop()
    }
}
