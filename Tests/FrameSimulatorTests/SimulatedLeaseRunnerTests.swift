import FrameCore
import FrameWire
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import Testing
@testable import FrameCoordinator
@testable import FrameSimulator

/// A simulated node's lease: READs, one checked FRAME per sample, SEGMENT_DONE.
@Suite struct SimulatedLeaseRunnerTests {
    func lease(samples: UInt32, first: UInt32 = 10, sourceSize: UInt64 = 3 * 1024 * 1024) -> Lease {
        let spec = SegmentSpec(index: 1, streamIndex: 0, timeBase: Rational(1, 1000), decodeStartPTS: 0, startPTS: 0,
                               endPTS: 1000, firstSample: first, sampleCount: samples, rate: Rational(5, 1),
                               originMicros: 0, keyframes: [])
        return Lease(lease: LeaseRef(jobID: UUID(), segment: 1, epoch: 1), leaseTTLMillis: 30_000, sourceSize: sourceSize,
                     formatHint: "mp4", segment: spec, options: OutputOptions(format: .jpeg))
    }

    /// Runs one lease against a fake coordinator that answers every READ; returns what the node sent.
    func exchange(_ lease: Lease, model: DecodeModel) async throws -> [Message] {
        let runner = SimulatedLeaseRunner(model: model, counters: SimulatorCounters())
        let sent = NIOLockedValueBox<[Message]>([])
        let finished = AsyncStream.makeStream(of: Void.self)
        await runner.attach(send: { message in
            sent.withLockedValue { $0.append(message) }
            switch message {
            case .read(let read):
                var data = ByteBuffer()
                data.writeBytes([UInt8](repeating: 1, count: Int(read.length)))
                // Answered on another task, as the coordinator's answer would arrive.
                Task { await runner.handle(.readData(ReadData(requestID: read.requestID, offset: read.offset, data: data))) }
            case .segmentDone, .segmentFailed:
                finished.continuation.yield()
            default: break
            }
        }, resumed: [])
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await runner.run() }
            await runner.handle(.lease(lease))
            var it = finished.stream.makeAsyncIterator()
            _ = await it.next()
            group.cancelAll()
        }
        return sent.withLockedValue { $0 }
    }

    @Test func aLeaseReadsSendsCheckedFramesAndFinishes() async throws {
        let model = DecodeModel(timePerSample: .zero, bytesReadPerSegment: 1_500_000, frameBytes: 5_000,
                                sourceWidth: 320, sourceHeight: 240)
        let l = lease(samples: 4)
        let sent = try await exchange(l, model: model)
        let reads = sent.compactMap { if case .read(let r) = $0 { r } else { nil } }
        #expect(reads.map(\.length) == [UInt32(Read.maxLength), UInt32(1_500_000 - Int(Read.maxLength))])
        let frames = sent.compactMap { if case .frame(let f) = $0 { f } else { nil } }
        #expect(frames.map(\.sampleIndex) == [10, 11, 12, 13])
        let expectation = FrameExpectation(options: l.options, sourceWidth: 320, sourceHeight: 240, rotation: 0)
        for f in frames { #expect(FrameCheck.check(f, against: expectation) == .valid) }
        guard case .segmentDone(let done) = sent.last else {
            Issue.record("the lease must end with SEGMENT_DONE")
            return
        }
        #expect(done.frameCount == 4 && done.bytesRead == 1_500_000)
    }

    @Test func theFailureRateEndsSegmentsWithARetryableFailure() async throws {
        let model = DecodeModel(timePerSample: .zero, bytesReadPerSegment: 0, frameBytes: 100, failureRate: 1)
        let sent = try await exchange(lease(samples: 2), model: model)
        guard case .segmentFailed(let failed) = sent.last else {
            Issue.record("the lease must end with SEGMENT_FAILED")
            return
        }
        #expect(failed.retryable)
        #expect(!sent.contains { if case .read = $0 { true } else { false } })
    }
}
