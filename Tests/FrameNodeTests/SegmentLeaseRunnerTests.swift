import FrameCore
import FrameMedia
import FrameWire
import Foundation
import FrameTestSupport
import Logging
import NIOConcurrencyHelpers
import NIOCore
import Testing
@testable import FrameNode

/// The node's lease runner against a scripted coordinator (no network): it
/// serves READs from a file and answers each SEGMENT_DONE with the next LEASE.
@Suite struct SegmentLeaseRunnerTests {
    /// What the scripted coordinator saw.
    final class Record: Sendable {
        let box = NIOLockedValueBox((done: [UInt32](), failed: [(UInt32, ErrorCode?, String)](), bytesRead: [UInt64]()))
        var done: [UInt32] { box.withLockedValue { $0.done } }
        var bytesRead: [UInt64] { box.withLockedValue { $0.bytesRead } }
        var failed: [(UInt32, ErrorCode?, String)] { box.withLockedValue { $0.failed } }
    }

    /// A coordinator answers SEGMENT_DONE with the next LEASE straight away (the slot is free on its
    /// side). The node must have freed the slot before it sent SEGMENT_DONE: refusing the LEASE
    /// ("no free slot") cost the segment a retry, and the node a hand-back, on every such race.
    /// The decoder of each finished segment is parked for the next one of the job (DecoderPool).
    @Test func theSlotIsFreeWhenSegmentDoneIsSentAndTheDecoderIsReused() async throws {
        let video = try Fixtures.video(seconds: 6, name: "runner.mp4")
        let bytes = try Data(contentsOf: video)
        let info = try MediaProbe.probe(path: video.path)
        let plan = try SegmentPlanner.plan(info, rate: Rational(1, 1), segmentSeconds: 2)
        try #require(plan.count >= 3)
        let job = UUID()
        let leases = plan.map { spec in
            Lease(lease: LeaseRef(jobID: job, segment: spec.index, epoch: 1), leaseTTLMillis: 30_000,
                  sourceSize: UInt64(bytes.count), formatHint: "mp4", segment: spec, options: OutputOptions())
        }
        let runner = SegmentLeaseRunner(slots: 1, logger: Logger(label: "test"))
        // The runner's writes and segment endings run under its run(), as the node agent runs it.
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await runner.run() }
            defer { group.cancelAll() }
            let record = Record()
            let next = NIOLockedValueBox(1)
            await runner.attach(send: { message in
                switch message {
                case .read(let read):
                    let start = Int(read.offset), end = min(bytes.count, start + Int(read.length))
                    await runner.handle(.readData(ReadData(
                        requestID: read.requestID, offset: read.offset, data: ByteBuffer(bytes: bytes[start..<end]))))
                case .segmentDone(let done):
                    record.box.withLockedValue {
                        $0.done.append(done.lease.segment)
                        $0.bytesRead.append(done.bytesRead)
                    }
                    // Answered before this write returns, like a coordinator on a fast link.
                    let index = next.withLockedValue { i -> Int in defer { i += 1 }; return i }
                    if index < leases.count { await runner.handle(.lease(leases[index])) }
                case .segmentFailed(let failed):
                    record.box.withLockedValue {
                        $0.failed.append((failed.lease.segment, ErrorCode(rawValue: failed.code), failed.message))
                    }
                default:
                    break
                }
            }, resumed: [])
            await runner.handle(.lease(leases[0]))
            let deadline = ContinuousClock.now + .seconds(60)
            while record.done.count < leases.count, record.failed.isEmpty, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(record.failed.isEmpty, "refused: \(record.failed)")
            #expect(record.done == leases.map(\.segment.index))
            // The job's later segments reuse the first one's opened decoder: no second open, and the
            // bytes already fetched (the whole small file here) are not fetched again.
            #expect(runner.decoders.reuses == leases.count - 1)
            #expect(record.bytesRead.first == UInt64(bytes.count))
            #expect(record.bytesRead.dropFirst().allSatisfy { $0 == 0 }, "\(record.bytesRead)")
            // Cancelling the job closes its parked decoder.
            #expect(runner.decoders.count == 1)
            await runner.handle(.cancel(Cancel(lease: leases.last!.lease, reason: .cancelled)))
            #expect(runner.decoders.count == 0)
        }
    }
}
