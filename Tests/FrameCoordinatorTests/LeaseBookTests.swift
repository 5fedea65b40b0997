import FrameCore
import FrameWire
import Foundation
import NIOCore
import Testing
@testable import FrameCoordinator

/// The scheduler's bookkeeping alone: every event with plain values and a
/// hand-driven clock (``TestInstant``), no database, no sockets.
@Suite struct LeaseBookTests {
    typealias Book = LeaseBook<TestInstant>
    let job = UUID(uuidString: "00000000-0000-0000-0000-0000000000aa")!
    let t0 = TestInstant(offset: .zero)

    func spec(_ segment: UInt32, first: UInt32 = 0, count: UInt32 = 2) -> SegmentSpec {
        SegmentSpec(index: segment, streamIndex: 0, timeBase: Rational(1, 1000), decodeStartPTS: 0, startPTS: 0,
                    endPTS: 1000, firstSample: first, sampleCount: count, rate: Rational(1, 1),
                    originMicros: 0, keyframes: [])
    }

    func ref(_ segment: UInt32, epoch: UInt64 = 1) -> LeaseRef { LeaseRef(jobID: job, segment: segment, epoch: epoch) }

    func lease(_ segment: UInt32, node: String, epoch: UInt64 = 1, first: UInt32 = 0, count: UInt32 = 2) -> Book.Held {
        Book.Held(ref: ref(segment, epoch: epoch), node: node, spec: spec(segment, first: first, count: count), format: .png,
                  source: URL(fileURLWithPath: "/nonexistent/input.mp4"), sourceSize: 1000,
                  expectation: FrameExpectation(format: .png, size: (320, 240)))
    }

    func frame(_ r: LeaseRef, sample: UInt32, width: UInt32 = 320) -> Frame {
        var buffer = ByteBuffer()
        buffer.writeBytes(FrameCheckTests.png(width: width, height: 240))
        return Frame(lease: r, sampleIndex: sample, pts: Int64(sample), seconds: Double(sample), format: .png,
                     width: width, height: 240, data: buffer)
    }

    func done(_ r: LeaseRef, frames: UInt32 = 2) -> SegmentDone {
        SegmentDone(lease: r, frameCount: frames, decodedFrames: frames, bytesRead: 0, elapsedMillis: 1)
    }

    /// A book with `node` joined on `session`, ready, holding `leases` (claimed).
    func book(node: String = "a", session: UInt64 = 1, slots: Int = 2, holding leases: [UInt32] = [],
              grace: Duration = .zero) -> Book {
        var b = Book(progressDeadline: ProgressDeadline(floor: .seconds(10), factor: 0), resumeGrace: grace)
        b.join(node, session: session, slots: slots)
        _ = b.ready(node, session: session)
        if !leases.isEmpty {
            var r = b.reserve(node)!
            for s in leases {
                let held = b.granted(lease(s, node: node), with: &r, at: t0)
                #expect(held)
            }
            b.finish(&r)
        }
        return b
    }

    @Test func aNodeIsOfferedWorkOnlyOnceReadyAndNeverBeyondItsSlots() throws {
        var b = Book(progressDeadline: ProgressDeadline(), resumeGrace: .zero)
        b.join("a", session: 1, slots: 2)
        let v1 = b.reserve("a")
        #expect(v1 == nil)
        #expect(b.readyNodes.isEmpty)
        let v2 = b.ready("a", session: 2)
        #expect(!v2)  // a session that is not the node's
        let v3 = b.ready("a", session: 1)
        #expect(v3)
        #expect(b.readyNodes == ["a"])
        let v4 = b.reserve("a")
        var r = try #require(v4)
        #expect(r.count == 2)
        let v5 = b.granted(lease(0, node: "a"), with: &r, at: t0)
        #expect(v5)
        let v6 = b.granted(lease(1, node: "a"), with: &r, at: t0)
        #expect(v6)
        let v7 = b.granted(lease(2, node: "a"), with: &r, at: t0)
        #expect(!v7)
        b.finish(&r)
        let v8 = b.reserve("a")
        #expect(v8 == nil)
        #expect(b.current(ref(0), node: "a") != nil)
    }

    @Test func aGrantForAReplacedSessionIsNotHeld() throws {
        var b = book()
        let v9 = b.reserve("a")
        var r = try #require(v9)
        b.join("a", session: 2, slots: 2)  // reconnected while the claim ran
        let v10 = b.granted(lease(0, node: "a"), with: &r, at: t0)
        #expect(!v10)
        #expect(b.current(ref(0), node: "a") == nil)
    }

    @Test func drainingStopsNewWorkButKeepsLeases() {
        var b = book(holding: [0])
        b.drain("a")
        let v11 = b.reserve("a")
        #expect(v11 == nil)
        #expect(b.readyNodes.isEmpty)
        #expect(b.current(ref(0), node: "a") != nil)
    }

    @Test func framesAreFencedCheckedAndCounted() {
        var b = book(holding: [0])
        #expect(b.frame(frame(ref(0), sample: 0), node: "b") == .stale)
        #expect(b.frame(frame(ref(0, epoch: 2), sample: 0), node: "a") == .stale)
        #expect(b.frame(frame(ref(0), sample: 2), node: "a") == .outsideSegment)
        guard case .invalid = b.frame(frame(ref(0), sample: 0, width: 64), node: "a") else {
            Issue.record("a frame of the wrong size must be refused")
            return
        }
        #expect(b.frame(frame(ref(0), sample: 1), node: "a") == .spool(.png))
        let v12 = b.frameSpooled(frame(ref(0), sample: 1), node: "a", at: t0)
        #expect(v12)
        #expect(b.current(ref(0), node: "a")?.timestamps == [1: 1.0])
        // The lease ended while the write ran: the frame does not count.
        let v13 = b.end(ref(0), node: "a")
        #expect(v13)
        let v14 = b.frameSpooled(frame(ref(0), sample: 0), node: "a", at: t0)
        #expect(!v14)
    }

    @Test func aSampleNearTheTopOfTheRangeDoesNotTrap() {
        var b = Book(progressDeadline: ProgressDeadline(), resumeGrace: .zero)
        b.join("a", session: 1, slots: 1)
        _ = b.ready("a", session: 1)
        var r = b.reserve("a")!
        let v15 = b.granted(lease(0, node: "a", first: .max - 1, count: 10), with: &r, at: t0)
        #expect(v15)
        #expect(b.frame(frame(ref(0), sample: .max), node: "a") == .spool(.png))
    }

    @Test func doneRecordsOnlyAFullSegmentAndAlwaysFreesTheSlot() {
        var b = book(holding: [0, 1])
        let v16 = b.done(done(ref(0)), node: "b")
        #expect(v16 == .stale)
        // Reported 2, sent 1.
        _ = b.frameSpooled(frame(ref(0), sample: 0), node: "a", at: t0)
        let v17 = b.done(done(ref(0)), node: "a")
        guard case .mismatch = v17 else {
            Issue.record("a short segment must fail")
            return
        }
        #expect(b.current(ref(0), node: "a") == nil)
        #expect(b.free("a") == 1)
        _ = b.frameSpooled(frame(ref(1), sample: 0), node: "a", at: t0)
        _ = b.frameSpooled(frame(ref(1), sample: 1), node: "a", at: t0)
        let v18 = b.done(done(ref(1)), node: "a")
        #expect(v18 == .record([0: 0, 1: 1]))
        #expect(b.free("a") == 2)
        let v19 = b.done(done(ref(1)), node: "a")
        #expect(v19 == .stale)  // a resent SEGMENT_DONE
    }

    @Test func aDroppedNodeIsHeldForTheGraceThenTakenBack() {
        var b = book(holding: [0], grace: .seconds(5))
        _ = b.frameSpooled(frame(ref(0), sample: 0), node: "a", at: t0)
        let v20 = b.leave("a", session: 7, mayResume: true)
        #expect(v20 == .ignore)  // not the current session
        let v21 = b.leave("a", session: 1, mayResume: true)
        #expect(v21 == .holdForGrace(.seconds(5)))
        #expect(b.detached == ["a": 1])
        let v22 = b.graceEnded("a", session: 1)
        #expect(v22)
        let v23 = b.graceEnded("a", session: 1)
        #expect(!v23)  // once
        let v24 = b.takeBack("a")
        #expect(v24 == [ref(0)])
        #expect(b.current(ref(0), node: "a") == nil)
        #expect(b.released[Book.Key(ref(0))]?.timestamps == [0: 0])
    }

    @Test func aLossThatMayNotResumeIsTakenBackAtOnce() {
        var b = book(holding: [0], grace: .seconds(5))
        let v25 = b.leave("a", session: 1, mayResume: false)
        #expect(v25 == .takeBack)
        var idle = book(grace: .seconds(5))
        // Nothing to hold: no grace either.
        let v26 = idle.leave("a", session: 1, mayResume: true)
        #expect(v26 == .takeBack)
        var noGrace = book(holding: [0])
        let v27 = noGrace.leave("a", session: 1, mayResume: true)
        #expect(v27 == .takeBack)
    }

    @Test func aNodeBackWithinTheGraceResumesWithItsFrames() throws {
        var b = book(holding: [0, 1], grace: .seconds(5))
        _ = b.frameSpooled(frame(ref(0), sample: 0), node: "a", at: t0)
        let v28 = b.leave("a", session: 1, mayResume: true)
        #expect(v28 == .holdForGrace(.seconds(5)))
        b.join("a", session: 2, slots: 1)
        #expect(b.detached.isEmpty)
        let v29 = b.graceEnded("a", session: 1)
        #expect(!v29)  // the old timer finds the node back
        // The store let it resume segment 0 only: segment 1 is forgotten.
        let v30 = b.forgetUnresumed(of: "a", keeping: [ref(0)])
        #expect(v30 == [ref(1)])
        let v31 = b.resume(lease(0, node: "a"), session: 2, at: t0)
        let resumed = try #require(v31)
        #expect(resumed.resumed && resumed.timestamps == [0: 0])
        // One slot: a second resumed lease does not fit.
        let v32 = b.resume(lease(1, node: "a"), session: 2, at: t0)
        #expect(v32 == nil)
        // Frames lost in the blip: given back uncharged, not failed.
        let v33 = b.done(done(ref(0)), node: "a")
        #expect(v33 == .lostInBlip)
    }

    @Test func framesOfARequeuedLeaseAreKeptUntilRegrantedOrTheJobEnds() throws {
        var b = book(holding: [0])
        _ = b.frameSpooled(frame(ref(0), sample: 0), node: "a", at: t0)
        let v34 = b.ended(ref(0), keepFrames: true)
        #expect(v34 != nil)
        #expect(b.released[Book.Key(ref(0))] != nil)
        // Resumed by the node that lost it: the frames come back.
        let v35 = b.resume(lease(0, node: "a"), session: 1, at: t0)
        let again = try #require(v35)
        #expect(again.timestamps == [0: 0])
        let v36 = b.ended(ref(0), keepFrames: true)
        #expect(v36 != nil)
        b.forgetJob(job)
        #expect(b.released.isEmpty)
        // Granted anew (a new epoch) to anyone: the kept frames are dropped.
        let v37 = b.ended(ref(0), keepFrames: true)
        #expect(v37 == nil)
        var c = book(holding: [0])
        _ = c.ended(ref(0), keepFrames: true)
        let v38 = c.reserve("a")
        var r = try #require(v38)
        let v39 = c.granted(lease(0, node: "a", epoch: 2), with: &r, at: t0)
        #expect(v39)
        #expect(c.released.isEmpty)
    }

    @Test func stalledLeasesFollowTheClockAndProgress() {
        var b = book(holding: [0, 1])
        let later = t0.advanced(by: .seconds(8))
        b.progressed(ref(1), at: later)
        let v40 = b.stalled(at: t0.advanced(by: .seconds(11)))
        #expect(v40 == [Book.Stalled(ref: ref(0), node: "a", limit: .seconds(10))])
        let v41 = b.stalled(at: t0.advanced(by: .seconds(19)))
        #expect(v41.map(\.ref) == [ref(0), ref(1)])
        // A lease no longer held is no longer watched.
        let v42 = b.end(ref(0), node: "a")
        #expect(v42)
        let v43 = b.stalled(at: t0.advanced(by: .seconds(19)))
        #expect(v43.map(\.ref) == [ref(1)])
        _ = b.frameSpooled(frame(ref(1), sample: 0), node: "a", at: t0.advanced(by: .seconds(19)))
        let v44 = b.stalled(at: t0.advanced(by: .seconds(20)))
        #expect(v44.isEmpty)
    }

    @Test func heartbeatsAreBatchedIntoOneRenewal() {
        var b = book()
        b.join("b", session: 2, slots: 1)
        b.heartbeat("a")
        b.heartbeat("b")
        b.heartbeat("a")
        b.heartbeat("ghost")  // not connected: nothing to renew
        let v45 = b.takeRenewals()
        #expect(v45 == ["a", "b"])
        let v46 = b.takeRenewals()
        #expect(v46.isEmpty)
        b.heartbeat("b")
        _ = b.leave("b", session: 2, mayResume: false)
        let v47 = b.takeRenewals()
        #expect(v47.isEmpty)
    }

    @Test func aJobEndedOnAnotherCoordinatorStopsOnlyItsLeasesHereAndFreesTheirSlots() throws {
        var b = book(node: "a", slots: 3, holding: [2, 0])
        let other = UUID(uuidString: "00000000-0000-0000-0000-0000000000bb")!
        let reserved = b.reserve("a")
        var r = try #require(reserved)
        let otherLease = Book.Held(ref: LeaseRef(jobID: other, segment: 0, epoch: 1), node: "a", spec: spec(0), format: .png,
                                   source: URL(fileURLWithPath: "/nonexistent/input.mp4"), sourceSize: 1000,
                                   expectation: FrameExpectation(format: .png, size: (320, 240)))
        let granted = b.granted(otherLease, with: &r, at: t0)
        #expect(granted)
        b.finish(&r)
        #expect(b.free("a") == 0)

        // Still queued or running there: nothing to do here.
        let running = b.jobEndedElsewhere(job, status: .processing, code: nil)
        let queued = b.jobEndedElsewhere(job, status: .queued, code: nil)
        #expect(running == nil && queued == nil)
        #expect(b.current(ref(0), node: "a") != nil)

        let stopped = b.jobEndedElsewhere(job, status: .cancelled, code: nil)
        let cancelled = try #require(stopped)
        #expect(cancelled.reason == .cancelled)
        #expect(cancelled.leases.map(\.ref) == [ref(0), ref(2)])
        #expect(cancelled.leases.allSatisfy { $0.node == "a" })
        #expect(b.current(ref(0), node: "a") == nil && b.current(ref(2), node: "a") == nil)
        #expect(b.current(otherLease.ref, node: "a") != nil, "another job's lease is untouched")
        #expect(b.free("a") == 2, "the slots are free again")
        // A late SEGMENT_DONE of a stopped lease is stale.
        let late = b.done(done(ref(0)), node: "a")
        #expect(late == .stale)
        // Hearing it again (another change of the same job) finds nothing more to stop.
        let again = b.jobEndedElsewhere(job, status: .cancelled, code: nil)
        #expect(again?.leases == [])

        // A failure there carries its code to the CANCEL.
        let stoppedOther = b.jobEndedElsewhere(other, status: .failed, code: .decodeFailed)
        let failed = try #require(stoppedOther)
        #expect(failed.reason == .decodeFailed && failed.leases.map(\.ref) == [otherLease.ref])

        // Completed there: ended here too (the caller drops its spool of the job), with nothing
        // left to stop once no lease is held.
        let completed = b.jobEndedElsewhere(job, status: .completed, code: nil)
        #expect(completed == Book.EndedElsewhere(reason: .cancelled, leases: []))
    }
}
