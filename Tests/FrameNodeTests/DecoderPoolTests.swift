import FrameCore
import FrameMedia
import Foundation
import FrameTestSupport
import Testing
@testable import FrameNode

/// The node's pool of opened decoders, rule by rule (no coordinator needed).
@Suite struct DecoderPoolTests {
    static let video = Result { try Fixtures.video(seconds: 2, name: "pool.mp4") }

    /// An opened decoder for `job` (a local file; the remote source is never read here).
    static func open(_ job: UUID) throws -> DecoderPool.OpenDecoder {
        let path = try video.get().path
        let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as! Int64
        let source = RemoteByteSource(
            size: size, lease: LeaseRef(jobID: job, segment: 0, epoch: 1), router: ReadRouter(background: BackgroundWork()),
            outbox: LeaseOutbox(send: nil, background: BackgroundWork()))
        return DecoderPool.OpenDecoder(decoder: try SegmentDecoder(path: path), source: source)
    }

    @Test func aJobGetsBackItsMostRecentDecoderAndNoOtherJobs() throws {
        let pool = DecoderPool(capacity: 3)
        let a = UUID(), b = UUID()
        let a1 = try Self.open(a), a2 = try Self.open(a), b1 = try Self.open(b)
        pool.park(a1)
        pool.park(b1)
        pool.park(a2)
        #expect(pool.take(jobID: a) === a2)
        #expect(pool.take(jobID: a) === a1)
        #expect(pool.take(jobID: a) == nil)
        #expect(pool.take(jobID: b) === b1)
        #expect(pool.reuses == 3)
    }

    @Test func capacityClosesTheOldestAndAMissMakesRoom() throws {
        let pool = DecoderPool(capacity: 2)
        let jobs = [UUID(), UUID(), UUID()]
        for job in jobs { pool.park(try Self.open(job)) }
        #expect(pool.count == 2)
        #expect(pool.take(jobID: jobs[0]) == nil, "the oldest was closed when the third was parked")
        // That miss was for a job about to open a decoder of its own: the full pool closed its oldest.
        #expect(pool.count == 1)
        #expect(pool.take(jobID: jobs[2]) != nil)
    }

    @Test func idleDecodersAndACancelledJobsDecodersAreClosed() throws {
        let pool = DecoderPool(capacity: 4, idleLimit: .seconds(10))
        let a = UUID(), b = UUID()
        pool.park(try Self.open(a))
        pool.park(try Self.open(b))
        pool.closeIdle(now: .now + .seconds(5))
        #expect(pool.count == 2)
        pool.closeIdle(jobID: a)
        #expect(pool.count == 1)
        #expect(pool.take(jobID: a) == nil)
        pool.closeIdle(now: .now + .seconds(11))
        #expect(pool.count == 0)
    }
}
