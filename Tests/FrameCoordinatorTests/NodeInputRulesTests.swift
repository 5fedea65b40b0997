import FrameCore
import FrameTestSupport
import FrameWire
import Foundation
import NIOCore
import Testing
@testable import FrameCoordinator
import FrameSession

/// The pure rules that stand between a node's bytes and the coordinator's
/// effects: READ ranges, message fields, slot accounting, progress deadlines
/// and frame checks, each with plain values (and a hand-driven clock).
@Suite struct ReadRangeTests {
    @Test func readsInsideTheSourceAreExact() {
        #expect(ReadRange.of(offset: 0, length: 10, sourceSize: 100) == .bytes(offset: 0, count: 10))
        #expect(ReadRange.of(offset: 95, length: 10, sourceSize: 100) == .bytes(offset: 95, count: 5))
        #expect(ReadRange.of(offset: 99, length: Read.maxLength, sourceSize: 100) == .bytes(offset: 99, count: 1))
    }

    @Test func atTheEndIsAnEmptyOKAnswer() {
        #expect(ReadRange.of(offset: 100, length: 1, sourceSize: 100) == .bytes(offset: 100, count: 0))
        #expect(ReadRange.of(offset: 0, length: 1, sourceSize: 0) == .bytes(offset: 0, count: 0))
    }

    @Test(arguments: [101, UInt64(Int64.max) - 1, UInt64(Int64.max), UInt64(Int64.max) + 1, UInt64.max - 1, UInt64.max])
    func pastTheEndIsOutOfRange(offset: UInt64) {
        guard case .outOfRange = ReadRange.of(offset: offset, length: Read.maxLength, sourceSize: 100) else {
            Issue.record("offset \(offset) was not refused"); return
        }
    }

    @Test func lengthsOutsideTheSpecAreRefusedEvenInProcess() {
        for length: UInt32 in [0, Read.maxLength + 1, UInt32.max] {
            guard case .outOfRange = ReadRange.of(offset: 0, length: length, sourceSize: 100) else {
                Issue.record("length \(length) was not refused"); continue
            }
        }
        guard case .outOfRange = ReadRange.of(offset: 0, length: 1, sourceSize: -1) else {
            Issue.record("a negative size was not refused"); return
        }
    }

    @Test func aLargeSourceIsReadNearItsEnd() {
        let size = Int64.max
        #expect(ReadRange.of(offset: UInt64(size) - 3, length: 10, sourceSize: size) == .bytes(offset: size - 3, count: 3))
    }

    @Test func sourceReaderReadsTheRangeAndStopsAtTheEnd() async throws {
        let file = Fixtures.directory.appendingPathComponent("reader-\(UUID().uuidString)")
        try Data((0..<200).map { UInt8($0) }).write(to: file)
        let reader = SourceReader(threadPool: .singleton)
        let middle = try await reader.read(file, offset: 10, count: 5)
        #expect(Array(middle.readableBytesView) == [10, 11, 12, 13, 14])
        let tail = try await reader.read(file, offset: 198, count: 10)
        #expect(Array(tail.readableBytesView) == [198, 199])
        await #expect(throws: FrameFlowError.self) {
            try await reader.read(file.appendingPathExtension("missing"), offset: 0, count: 1)
        }
    }
}

@Suite struct NodeMessageRulesTests {
    func hello(slots: UInt16 = 2, held: [LeaseRef] = [], labels: [Label] = [], version: String = "1.0") -> Hello {
        Hello(nodeName: "n1", softwareVersion: version, slots: slots, labels: labels, heldLeases: held)
    }

    func refused(_ m: Message) -> Bool {
        if case .refuse = NodeMessageRules.check(m) { return true }
        return false
    }

    @Test func slotsMustBeOneToTheMaximum() {
        #expect(refused(.hello(hello(slots: 0))))
        #expect(!refused(.hello(hello(slots: 1))))
        #expect(!refused(.hello(hello(slots: NodeMessageRules.maxSlots))))
        #expect(refused(.hello(hello(slots: NodeMessageRules.maxSlots + 1))))
        #expect(refused(.hello(hello(slots: .max))))
    }

    @Test func heldLeasesAreBoundedAndDistinct() {
        let a = LeaseRef(jobID: UUID(), segment: 0, epoch: 1)
        let b = LeaseRef(jobID: UUID(), segment: 1, epoch: .max)
        #expect(!refused(.hello(hello(slots: 2, held: [a, b]))))
        // More than slots is fine: a node also offers the leases it just finished (kept for a resend).
        #expect(!refused(.hello(hello(slots: 1, held: [a, b]))))
        #expect(refused(.hello(hello(slots: 2, held: [a, a]))))
        let many = (0...UInt32(NodeMessageRules.maxHeldLeases)).map { LeaseRef(jobID: a.jobID, segment: $0, epoch: 1) }
        #expect(refused(.hello(hello(slots: 1, held: many))))
        #expect(!refused(.hello(hello(slots: 1, held: Array(many.dropLast())))))
    }

    @Test func labelsAndVersionHaveNoControlCharacters() {
        #expect(!refused(.hello(hello(labels: [Label(key: "gpu", value: "yes, ünïcode")]))))
        #expect(refused(.hello(hello(labels: [Label(key: "gpu\u{0}", value: "yes")]))))
        #expect(refused(.hello(hello(labels: [Label(key: "gpu", value: "a\nb")]))))
        #expect(refused(.hello(hello(labels: [Label(key: "", value: "x")]))))
        #expect(refused(.hello(hello(labels: [Label(key: String(repeating: "k", count: 65), value: "x")]))))
        #expect(refused(.hello(hello(labels: (0..<65).map { Label(key: "k\($0)", value: "") }))))
        #expect(refused(.hello(hello(version: "1.0\u{0}evil"))))
        #expect(refused(.hello(hello(version: String(repeating: "v", count: 257)))))
    }

    @Test func framesTotalMustFitAnInt64() {
        #expect(!refused(.heartbeat(Heartbeat(sequence: .max, activeLeases: .max, framesTotal: UInt64(Int64.max)))))
        #expect(refused(.heartbeat(Heartbeat(sequence: 0, activeLeases: 0, framesTotal: UInt64(Int64.max) + 1))))
        #expect(refused(.heartbeat(Heartbeat(sequence: 0, activeLeases: 0, framesTotal: .max))))
    }

    @Test func freeTextIsNormalisedNotRefused() {
        let ref = LeaseRef(jobID: UUID(), segment: 0, epoch: 1)
        let long = String(repeating: "é", count: 5000)
        guard case .accept(.segmentFailed(let f)) = NodeMessageRules.check(.segmentFailed(SegmentFailed(
            lease: ref, code: .corruptMedia, message: "bad\u{0}\nline\u{7F}" + long)))
        else { Issue.record("not accepted"); return }
        #expect(f.message.hasPrefix("bad  line "))
        #expect(f.message.count == NodeMessageRules.maxFreeTextCharacters + 1)
        #expect(!f.message.unicodeScalars.contains { $0.properties.generalCategory == .control })
    }

    @Test func theSessionRefusesABadHelloAndABadHeartbeatWithInvalidField() {
        var m = NodeSessionStateMachine(certificateName: "n1")
        guard case .reject(.invalidField, _) = m.receive(.hello(hello(slots: 0))) else {
            Issue.record("slots 0 accepted"); return
        }
        #expect(m.state == .closed)
        var ok = NodeSessionStateMachine(certificateName: "n1")
        guard case .acceptHello = ok.receive(.hello(hello())) else { Issue.record("refused"); return }
        guard case .reject(.invalidField, _) = ok.receive(.heartbeat(Heartbeat(sequence: 1, activeLeases: 0, framesTotal: .max))) else {
            Issue.record("framesTotal 2^64-1 accepted"); return
        }
        #expect(ok.state == .closed)
    }
}

@Suite struct SlotLedgerTests {
    func ref(_ i: UInt32) -> LeaseRef { LeaseRef(jobID: UUID(uuidString: "00000000-0000-0000-0000-000000000001")!, segment: i, epoch: 1) }

    @Test func aJoinedNodeGetsNothingBeforeItIsEligible() {
        var l = SlotLedger()
        l.join("a", session: 1, slots: 2)
        #expect(l.free("a") == 0)
        let none = l.reserve("a")
        #expect(none == nil)
        l.makeEligible("a", session: 1)
        #expect(l.free("a") == 2)
    }

    @Test func reservationsAndHeldLeasesNeverExceedTheSlots() throws {
        var l = SlotLedger()
        l.join("a", session: 1, slots: 2)
        l.makeEligible("a", session: 1)
        // Two dispatch paths race: the first takes both slots, the second gets none.
        let firstMaybe = l.reserve("a", upTo: .max)
        var first = try #require(firstMaybe)
        #expect(first.count == 2)
        let second = l.reserve("a")
        #expect(second == nil)
        let h0 = l.hold(ref(0), with: &first), h1 = l.hold(ref(1), with: &first)
        #expect(h0 && h1)
        // A claim that returned more than it reserved cannot hold the extra grant.
        let h2 = l.hold(ref(2), with: &first)
        #expect(!h2)
        l.finish(&first)
        #expect(l.free("a") == 0)
        l.release(ref(0), from: "a")
        #expect(l.free("a") == 1)
        let maybe = l.reserve("a", upTo: 5)
        var again = try #require(maybe)
        #expect(again.count == 1)
        l.finish(&again)
        #expect(l.free("a") == 1)
    }

    @Test func aReservationOfAReplacedSessionHoldsNothing() throws {
        var l = SlotLedger()
        l.join("a", session: 1, slots: 1)
        l.makeEligible("a", session: 1)
        let maybe = l.reserve("a")
        var old = try #require(maybe)
        l.join("a", session: 2, slots: 1)  // reconnected while the claim ran
        let held = l.hold(ref(0), with: &old)
        #expect(!held)
        l.finish(&old)
        l.makeEligible("a", session: 1)  // a stale session cannot make the new one eligible
        #expect(l.free("a") == 0)
        l.makeEligible("a", session: 2)
        #expect(l.free("a") == 1)
        l.leave("a", session: 1)  // the old session's end leaves the new one alone
        #expect(l.free("a") == 1)
    }

    @Test func resumedLeasesCountAndAreBoundedBySlots() {
        var l = SlotLedger()
        l.join("a", session: 1, slots: 1)
        let r0 = l.holdResumed(ref(0), on: "a", session: 1)
        let r1 = l.holdResumed(ref(1), on: "a", session: 1)
        #expect(r0 && !r1)
        l.makeEligible("a", session: 1)
        #expect(l.free("a") == 0)
    }

    @Test func zeroSlotsTakeNoWork() {
        var l = SlotLedger()
        l.join("a", session: 1, slots: 0)
        l.makeEligible("a", session: 1)
        let none = l.reserve("a")
        #expect(none == nil)
    }

    @Test func drainingStopsNewWork() {
        var l = SlotLedger()
        l.join("a", session: 1, slots: 3)
        l.makeEligible("a", session: 1)
        l.makeIneligible("a")
        let none = l.reserve("a")
        #expect(none == nil)
    }
}

/// A clock the test moves by hand.
struct TestInstant: InstantProtocol, Sendable {
    var offset: Duration
    func advanced(by d: Duration) -> TestInstant { TestInstant(offset: offset + d) }
    func duration(to other: TestInstant) -> Duration { other.offset - offset }
    static func < (a: TestInstant, b: TestInstant) -> Bool { a.offset < b.offset }
}

@Suite struct ProgressDeadlineTests {
    func spec(seconds: Int64, last: Bool = false, samples: UInt32 = 10, rate: Rational = Rational(1, 1)) -> SegmentSpec {
        SegmentSpec(index: 0, streamIndex: 0, timeBase: Rational(1, 1000), decodeStartPTS: 0, startPTS: 0,
                    endPTS: last ? .max : seconds * 1000, firstSample: 0, sampleCount: samples, rate: rate,
                    originMicros: 0, keyframes: [])
    }

    @Test func theLimitIsTheFloorOrScaledFromTheSegment() {
        let rule = ProgressDeadline(floor: .seconds(60), factor: 2)
        #expect(rule.limit(for: spec(seconds: 10)) == .seconds(60))
        #expect(rule.limit(for: spec(seconds: 100)) == .seconds(200))
        // The last segment has no end PTS: its samples' span counts.
        #expect(rule.limit(for: spec(seconds: 0, last: true, samples: 50, rate: Rational(1, 2))) == .seconds(200))
        #expect(ProgressDeadline(floor: .seconds(5), factor: 0).limit(for: spec(seconds: 1000)) == .seconds(5))
    }

    @Test func absurdSpansDoNotTrap() {
        let rule = ProgressDeadline(floor: .seconds(1), factor: 1000)
        var wide = spec(seconds: 1)
        wide.decodeStartPTS = .min
        wide.endPTS = .max - 1
        wide.timeBase = Rational(1_000_000, 1)
        #expect(rule.limit(for: wide) > .seconds(1))
    }

    @Test func aLeaseIsOverdueOnlyAfterItsLimitWithoutProgress() {
        var watch = ProgressWatch<TestInstant>(rule: ProgressDeadline(floor: .seconds(10), factor: 0))
        let t0 = TestInstant(offset: .zero)
        let a = LeaseRef(jobID: UUID(), segment: 0, epoch: 1)
        let b = LeaseRef(jobID: UUID(), segment: 1, epoch: 1)
        watch.start(a, spec: spec(seconds: 1), at: t0)
        watch.start(b, spec: spec(seconds: 1), at: t0)
        #expect(watch.overdue(at: t0.advanced(by: .seconds(10))).isEmpty)
        watch.progressed(b, at: t0.advanced(by: .seconds(8)))
        #expect(watch.overdue(at: t0.advanced(by: .seconds(11))) == [a])
        #expect(watch.overdue(at: t0.advanced(by: .seconds(19))) == [a, b])
        watch.stop(a)
        #expect(watch.overdue(at: t0.advanced(by: .seconds(19))) == [b])
        // Progress on a lease that is not watched (already ended) is ignored.
        watch.progressed(a, at: t0.advanced(by: .seconds(19)))
        #expect(watch.count == 1)
    }
}

@Suite struct FrameCheckTests {
    static func png(width: UInt32, height: UInt32, trailer: Bool = true) -> [UInt8] {
        var b = FrameCheck.pngSignature
        func u32(_ v: UInt32) { b += [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
        u32(13); b += Array("IHDR".utf8); u32(width); u32(height); b += [8, 2, 0, 0, 0]; u32(0)
        u32(3); b += Array("IDAT".utf8); b += [1, 2, 3]; u32(0)
        if trailer { b += FrameCheck.pngTrailer }
        return b
    }

    static func jpeg(width: UInt16, height: UInt16, sof: UInt8 = 0xC0) -> [UInt8] {
        var b: [UInt8] = [0xFF, 0xD8]
        b += [0xFF, 0xE0, 0x00, 0x10] + Array("JFIF\0".utf8) + [1, 1, 0, 0, 1, 0, 1, 0, 0]  // APP0, 16 bytes
        b += [0xFF, 0xC4, 0x00, 0x03, 0x00]  // a DHT before the frame header
        b += [0xFF, sof, 0x00, 0x0B, 8, UInt8(height >> 8), UInt8(height & 0xFF), UInt8(width >> 8), UInt8(width & 0xFF),
              1, 1, 0x11, 0]
        b += [0xFF, 0xDA, 0x00, 0x08, 1, 1, 0, 0, 0x3F, 0] + [0x12, 0x34] + [0xFF, 0xD9]
        return b
    }

    func frame(_ bytes: [UInt8], format: ImageFormat = .png, width: UInt32 = 320, height: UInt32 = 240, seconds: Double = 1) -> Frame {
        var buffer = ByteBuffer()
        buffer.writeBytes(bytes)
        return Frame(lease: LeaseRef(jobID: UUID(), segment: 0, epoch: 1), sampleIndex: 0, pts: 0, seconds: seconds,
                     format: format, width: width, height: height, data: buffer)
    }

    let png320 = FrameExpectation(format: .png, size: (320, 240))

    @Test func aMatchingImagePasses() {
        #expect(FrameCheck.check(frame(Self.png(width: 320, height: 240)), against: png320) == .valid)
        #expect(FrameCheck.check(frame(Self.jpeg(width: 320, height: 240), format: .jpeg),
                                 against: FrameExpectation(format: .jpeg, size: (320, 240))) == .valid)
        // Progressive JPEG (SOF2) too; and an unknown expected size checks the header against FRAME alone.
        #expect(FrameCheck.check(frame(Self.jpeg(width: 320, height: 240, sof: 0xC2), format: .jpeg),
                                 against: FrameExpectation(format: .jpeg, size: nil)) == .valid)
    }

    @Test func garbageWrongFormatAndTruncationAreRefused() {
        func invalid(_ f: Frame, _ e: FrameExpectation) -> Bool {
            if case .invalid = FrameCheck.check(f, against: e) { return true }
            return false
        }
        #expect(invalid(frame(Array("hello, I am not an image".utf8)), png320))
        #expect(invalid(frame([]), png320))
        #expect(invalid(frame(Self.png(width: 320, height: 240, trailer: false)), png320))
        #expect(invalid(frame(Self.jpeg(width: 320, height: 240), format: .jpeg), png320))  // the job wants PNG
        #expect(invalid(frame(Self.jpeg(width: 320, height: 240)), png320))  // JPEG bytes announced as PNG
        let jpegJob = FrameExpectation(format: .jpeg, size: (320, 240))
        var cut = Self.jpeg(width: 320, height: 240)
        cut.removeLast(2)
        #expect(invalid(frame(cut, format: .jpeg), jpegJob))
        // A segment length running past the file.
        var long = Self.jpeg(width: 320, height: 240)
        long[4] = 0xFF
        #expect(invalid(frame(long, format: .jpeg), jpegJob))
        // No SOF before the scan.
        #expect(invalid(frame([0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02, 0xFF, 0xD9], format: .jpeg), jpegJob))
    }

    @Test func dimensionsMustMatchTheFrameAndTheLease() {
        #expect(FrameCheck.check(frame(Self.png(width: 320, height: 240), width: 321), against: png320) != .valid)
        #expect(FrameCheck.check(frame(Self.png(width: 640, height: 480), width: 640, height: 480), against: png320) != .valid)
        #expect(FrameCheck.check(frame(Self.png(width: 0, height: 0), width: 0, height: 0),
                                 against: FrameExpectation(format: .png, size: nil)) != .valid)
    }

    @Test func secondsMustBeFinite() {
        for s in [Double.nan, .infinity, -.infinity] {
            #expect(FrameCheck.check(frame(Self.png(width: 320, height: 240), seconds: s), against: png320) != .valid)
        }
    }

    @Test func theExpectationFollowsTheEncodersSizeRule() {
        let opts = OutputOptions(format: .png, maxWidth: 640, maxHeight: 0)
        let e = FrameExpectation(options: opts, sourceWidth: 1920, sourceHeight: 1080, rotation: 0)
        #expect(e.size?.width == 640 && e.size?.height == 360)
        let rotated = FrameExpectation(options: OutputOptions(), sourceWidth: 1920, sourceHeight: 1080, rotation: 90)
        #expect(rotated.size?.width == 1080 && rotated.size?.height == 1920)
        let unknown = FrameExpectation(options: OutputOptions(), sourceWidth: nil, sourceHeight: 1080, rotation: nil)
        #expect(unknown.size == nil)
        // Never scaled up.
        let small = FrameExpectation(options: OutputOptions(maxWidth: 4000, maxHeight: 4000), sourceWidth: 320, sourceHeight: 240, rotation: 0)
        #expect(small.size?.width == 320)
    }

    @Test func realEncoderOutputPasses() throws {
        // PNG and JPEG written by the ffmpeg tool (the same libavcodec encoders the node uses).
        for (ext, format) in [("png", ImageFormat.png), ("jpg", .jpeg)] {
            let url = Fixtures.directory.appendingPathComponent("check-\(UUID().uuidString).\(ext)")
            try Fixtures.run("/usr/bin/ffmpeg", ["-v", "error", "-f", "lavfi", "-i", "testsrc2=size=200x120:rate=1",
                                                 "-frames:v", "1", "-y", url.path])
            let bytes = [UInt8](try Data(contentsOf: url))
            let header = try FrameCheck.imageHeader(bytes, format: format).get()
            #expect(header.width == 200 && header.height == 120, "\(ext)")
            #expect(FrameCheck.check(frame(bytes, format: format, width: 200, height: 120),
                                     against: FrameExpectation(format: format, size: (200, 120))) == .valid, "\(ext)")
        }
    }
}
