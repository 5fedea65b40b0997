import FrameCluster
import FrameCore
import FrameStore
import FrameTestSupport
import FrameWire
import Foundation
import NIOCore
import Testing
@testable import FrameCoordinator

/// A node with a valid certificate that does not play by the rules, against a
/// real in-process coordinator (listener, scheduler, PostgreSQL): the
/// coordinator answers with an ERROR or ignores, never crashes, never hangs,
/// and never hands over bytes of a video the node was not leased.
///
/// Timing-bounded (each exchange must end within seconds), so it runs in the
/// timing phase of scripts/test, one test at a time.
@Suite(.serialized, .timeLimit(.minutes(5))) struct HostileNodeTests {
    typealias H = PipelineTests

    /// Enough segments that refused and failed leases never run a job out of
    /// work, and no cap that the many short sessions could reach.
    static func harness(_ extra: [String] = []) async throws -> H.Harness {
        try await H.makeHarness(extra: ["coordinator.max_attempts=100", "coordinator.max_node_losses=100"] + extra)
    }

    static func hello(_ name: String, slots: UInt16 = 1, held: [LeaseRef] = [], labels: [Label] = []) -> Message {
        .hello(Hello(nodeName: name, softwareVersion: "hostile", slots: slots, labels: labels, heldLeases: held))
    }

    static func connect(_ h: H.Harness, _ name: String, first: Message? = nil, heartbeats: Bool = true) async throws -> HostileNode {
        try await HostileNode.connect(
            port: h.clusterPort, tls: try h.cluster.nodeTLS(name), first: first ?? hello(name), heartbeats: heartbeats)
    }

    static func isLease(_ m: Message) -> Bool { if case .lease = m { true } else { false } }
    static func isWelcome(_ m: Message) -> Bool { if case .welcome = m { true } else { false } }

    /// The coordinator still serves: a new session is welcomed.
    static func expectAlive(_ h: H.Harness, _ context: String) async throws {
        let probe = try await connect(h, "probe", heartbeats: false)
        let welcomed = await probe.inbox.wait(timeout: .seconds(5), isWelcome) != nil
        await probe.close()
        #expect(welcomed, "the coordinator did not welcome a new node after: \(context)")
    }

    static func welcomeOf(_ messages: [Message]) async -> Welcome? {
        messages.lazy.compactMap { if case .welcome(let w) = $0 { w } else { nil } }.first
    }

    static func readData(_ messages: [Message], _ id: UInt32) -> ReadData? {
        messages.lazy.compactMap { if case .readData(let r) = $0, r.requestID == id { r } else { nil } }.first
    }

    static func bytes(of url: URL, offset: UInt64, count: Int) throws -> [UInt8] {
        let data = try Data(contentsOf: url)
        let start = Int(offset)
        return [UInt8](data[start..<min(data.count, start + count)])
    }

    // MARK: focused tests, one per item of issue 10

    @Test func aReadOutsideTheSourceIsAnsweredOutOfRangeAndCrashesNothing() async throws {
        let h = try await Self.harness()
        let job = try await H.submit(h, video: try Fixtures.video(seconds: 6, name: "range.mp4"), rate: Rational(1, 1))
        let node = try await Self.connect(h, "range")
        let m = await node.inbox.wait(timeout: .seconds(10), Self.isLease)
        guard case .lease(let lease)? = m else { Issue.record("no lease"); await h.stop(); return }
        let size = lease.sourceSize
        let reads: [(UInt32, UInt64, UInt32)] = [
            (1, size + 1, 1), (2, UInt64(Int64.max), 16), (3, UInt64(Int64.max) + 1, 16), (4, UInt64.max, Read.maxLength),
            (5, size, 1), (6, size - 3, 10),
        ]
        node.send(reads.map { .read(Read(requestID: $0.0, lease: lease.lease, offset: $0.1, length: $0.2)) })
        await node.inbox.settle()
        let heard = await node.inbox.messages
        for id: UInt32 in 1...4 {
            let answer = Self.readData(heard, id)
            #expect(answer?.errorCode == .readOutOfRange, "read \(id): \(String(describing: answer))")
            #expect(answer?.data.readableBytes == 0)
        }
        // At the end: OK and empty (EOF); near it: the last bytes, exactly.
        #expect(Self.readData(heard, 5).map { $0.isOK && $0.data.readableBytes == 0 } == true)
        let tail = try #require(Self.readData(heard, 6))
        #expect(tail.isOK)
        #expect(Array(tail.data.readableBytesView) == (try Self.bytes(of: h.service.layout.input(job.id, ext: "mp4"), offset: size - 3, count: 10)))
        await node.close()
        try await Self.expectAlive(h, "out-of-range READs")
        await h.stop()
    }

    @Test func numbersThatCannotBeRepresentedAreRefusedWithInvalidField() async throws {
        let h = try await Self.harness()
        let node = try await Self.connect(h, "counter", heartbeats: false)
        #expect(await node.inbox.wait(timeout: .seconds(5), Self.isWelcome) != nil)
        node.send([.heartbeat(Heartbeat(sequence: .max, activeLeases: .max, framesTotal: .max))])
        let m = await node.inbox.wait(timeout: .seconds(5)) { if case .error = $0 { true } else { false } }
        guard case .error(let e)? = m else { Issue.record("no ERROR"); await h.stop(); return }
        #expect(e.errorCode == .invalidField && e.fatal)
        await node.close()
        try await Self.expectAlive(h, "a HEARTBEAT with framesTotal 2^64-1")
        await h.stop()
    }

    @Test func welcomeComesBeforeAnyLeaseAndLeasesNeverExceedSlots() async throws {
        let h = try await Self.harness()
        // Work is pending before any node connects: the race the issue saw once in seven tries.
        for i in 0..<2 {
            _ = try await H.submit(h, video: try Fixtures.video(seconds: 20, name: "eager\(i).mp4"), rate: Rational(1, 1))
        }
        for round in 0..<7 {
            let slots = UInt16(1 + round % 3)
            let node = try await Self.connect(h, "eager-\(round)", first: Self.hello("eager-\(round)", slots: slots))
            _ = await node.inbox.wait(timeout: .milliseconds(2500)) { _ in false }  // let every dispatch path run: join, ticks
            let heard = await node.inbox.messages
            guard case .welcome? = heard.first else {
                Issue.record("round \(round): the first message was \(String(describing: heard.first?.type))"); break
            }
            let leases = heard.filter(Self.isLease).count
            #expect(leases >= 1 && leases <= Int(slots), "round \(round): \(leases) leases on \(slots) slots")
            await node.close()
        }
        // slots = 0 is refused, not read as 1.
        let zero = try await Self.connect(h, "no-slots", first: Self.hello("no-slots", slots: 0))
        await zero.inbox.settle()
        let heard = await zero.inbox.messages
        #expect(!heard.contains(where: Self.isLease) && !heard.contains(where: Self.isWelcome))
        guard case .error(let e)? = heard.first else { Issue.record("no ERROR for slots 0: \(heard)"); await h.stop(); return }
        #expect(e.errorCode == .invalidField && e.fatal)
        await zero.close()
        await h.stop()
    }

    @Test func aFrameThatIsNotTheLeasedImageFailsTheSegmentOnThatNode() async throws {
        let h = try await Self.harness()
        let job = try await H.submit(h, video: try Fixtures.video(seconds: 6, name: "frames.mp4"), rate: Rational(1, 1))
        let node = try await Self.connect(h, "forger")
        let m = await node.inbox.wait(timeout: .seconds(10), Self.isLease)
        guard case .lease(let lease)? = m else { Issue.record("no lease"); await h.stop(); return }
        #expect(lease.segment.sampleCount > 0)
        var bytes = ByteBuffer()
        bytes.writeString("this is not a PNG, whatever the FRAME says")
        let sample = lease.segment.firstSample
        node.send([.frame(Frame(lease: lease.lease, sampleIndex: sample, pts: lease.segment.startPTS, seconds: 0,
                                format: .png, width: 320, height: 240, data: bytes))])
        let cancel = await node.inbox.wait(timeout: .seconds(5)) { if case .cancel = $0 { true } else { false } }
        guard case .cancel(let c)? = cancel else { Issue.record("no CANCEL"); await h.stop(); return }
        #expect(c.lease == lease.lease && c.errorCode == .invalidFrame)
        // Never spooled for the ZIP; the segment failed on this node with the code, and may go elsewhere.
        #expect(!FileManager.default.fileExists(atPath: h.service.layout.spoolFrame(job.id, sample: sample, format: .png).path))
        try await TestCluster.eventually("the failure recorded") {
            try await JobStore(database: h.database).events(jobID: job.id).contains {
                $0.kind == .segmentRetry && $0.node == "forger" && $0.reason == "INVALID_FRAME"
            }
        }
        await node.close()
        await h.stop()
    }

    @Test func aLeaseWithHeartbeatsButNoProgressIsTakenBack() async throws {
        let h = try await Self.harness(["coordinator.progress_timeout=2s", "coordinator.progress_factor=0"])
        let job = try await H.submit(h, video: try Fixtures.video(seconds: 6, name: "stall.mp4"), rate: Rational(1, 1))
        let idle = try await Self.connect(h, "idle")
        let reader = try await Self.connect(h, "reader")
        let m1 = await idle.inbox.wait(timeout: .seconds(10), Self.isLease)
        let m2 = await reader.inbox.wait(timeout: .seconds(10), Self.isLease)
        guard case .lease(let stalled)? = m1, case .lease(let busy)? = m2 else { Issue.record("no leases"); await h.stop(); return }
        // The reader makes progress (a READ every half second); the idle node only heartbeats.
        let started = ContinuousClock.now
        var id: UInt32 = 0
        while ContinuousClock.now - started < .seconds(5) {
            id += 1
            reader.send([.read(Read(requestID: id, lease: busy.lease, offset: 0, length: 16))])
            try await Task.sleep(for: .milliseconds(500))
        }
        let cancel = await idle.inbox.wait(timeout: .seconds(3)) { if case .cancel = $0 { true } else { false } }
        guard case .cancel(let c)? = cancel else { Issue.record("the stalled lease was not taken back"); await h.stop(); return }
        #expect(c.lease == stalled.lease && c.errorCode == .progressTimeout)
        #expect(await reader.inbox.messages.contains { if case .cancel = $0 { true } else { false } } == false)
        let events = try await JobStore(database: h.database).events(jobID: job.id)
        #expect(events.contains { $0.kind == .segmentRetry && $0.node == "idle" && $0.reason == "PROGRESS_TIMEOUT" })
        await idle.close()
        await reader.close()
        await h.stop()
    }

    // MARK: the harness

    struct Context: Sendable {
        var own: Lease?
        var other: LeaseRef
        var fake: LeaseRef
        var ownRef: LeaseRef { own?.lease ?? fake }
        var size: UInt64 { own?.sourceSize ?? 1000 }
    }

    struct Case: Sendable {
        var name: String
        /// The first frame instead of a valid HELLO (nil: a valid HELLO).
        var first: Message?
        var needsLease = true
        /// The coordinator must answer with a fatal ERROR (this code, if given) and close.
        var fatal: ErrorCode?? = nil
        var messages: @Sendable (Context) -> [Message]
    }

    /// Stands for the victim's lease in the statically built HELLO cases.
    static let victimSentinel = UUID(uuidString: "00000000-0000-0000-0000-00000000dead")!

    static func refs(_ c: Context) -> [LeaseRef] {
        let own = c.ownRef
        return [
            c.other, c.fake,
            LeaseRef(jobID: own.jobID, segment: own.segment, epoch: own.epoch &- 1),
            LeaseRef(jobID: own.jobID, segment: own.segment, epoch: own.epoch &+ 1),
            LeaseRef(jobID: own.jobID, segment: own.segment, epoch: .max),
            LeaseRef(jobID: own.jobID, segment: own.segment, epoch: UInt64(Int64.max) + 1),
            LeaseRef(jobID: own.jobID, segment: .max, epoch: own.epoch),
            LeaseRef(jobID: own.jobID, segment: UInt32(Int32.max) + 1, epoch: 0),
        ]
    }

    static func png(_ c: Context) -> ByteBuffer {
        var b = ByteBuffer()
        b.writeBytes(FrameCheckTests.png(width: 320, height: 240))
        return b
    }

    static let cases: [Case] = {
        let offsets: @Sendable (UInt64) -> [UInt64] = { size in
            [0, size &- 1, size, size + 1, UInt64(Int64.max) - 1, UInt64(Int64.max), UInt64(Int64.max) + 1, UInt64.max - 1, .max]
        }
        var cases: [Case] = [
            Case(name: "reads of its own lease at every boundary offset") { c in
                var id: UInt32 = 0
                return offsets(c.size).flatMap { o in [1, Read.maxLength].map { len in
                    id += 1
                    return .read(Read(requestID: id == 1 ? .max : id, lease: c.ownRef, offset: o, length: len))
                } }
            },
            Case(name: "reads of other nodes', stale, forged and out-of-range leases") { c in
                var id: UInt32 = 100
                return refs(c).flatMap { r in [0, c.size &- 1].map { o in
                    id += 1
                    return .read(Read(requestID: id, lease: r, offset: o, length: 64))
                } }
            },
            Case(name: "heartbeats with boundary counters") { _ in
                [0, 1, UInt64(Int64.max)].flatMap { v in [UInt16(0), .max].map { a in
                    .heartbeat(Heartbeat(sequence: v == 1 ? .max : v, activeLeases: a, framesTotal: v))
                } }
            },
            Case(name: "results on other nodes', stale and forged leases") { c in
                refs(c).flatMap { r -> [Message] in [
                    .frame(Frame(lease: r, sampleIndex: 0, pts: 0, seconds: 0, format: .png, width: 320, height: 240, data: png(c))),
                    .segmentDone(SegmentDone(lease: r, frameCount: 0, decodedFrames: .max, bytesRead: .max, elapsedMillis: .max)),
                    .segmentFailed(SegmentFailed(lease: r, code: .corruptMedia, message: "says who")),
                    .segmentFailed(SegmentFailed(lease: r, code: 65535, retryable: false, message: "")),
                ] }
            },
            Case(name: "frames of its own lease outside the segment") { c in
                guard let seg = c.own?.segment else { return [] }
                let end = UInt64(seg.firstSample) + UInt64(seg.sampleCount)
                var samples: [UInt32] = [.max]
                if end <= UInt64(UInt32.max) { samples.append(UInt32(end)) }
                if end + 1 <= UInt64(UInt32.max) { samples.append(UInt32(end + 1)) }
                if seg.firstSample > 0 { samples += [0, seg.firstSample - 1] }
                return samples.map { .frame(Frame(lease: c.ownRef, sampleIndex: $0, pts: .min, seconds: .nan, format: .jpeg,
                                                   width: 0, height: .max, data: png(c))) }
            },
            Case(name: "errors from the node, non-fatal, about any lease") { c in
                [c.ownRef, c.other, c.fake].flatMap { r in [UInt16(0), 1, 108, .max].map { code in
                    .error(ErrorMessage(code: code, fatal: false, message: "noise\u{0}\n", lease: r))
                } } + [.error(ErrorMessage(code: 0, fatal: false, message: "", lease: nil))]
            },
            Case(name: "drain, then reads and results") { c in
                [.drain(Drain(reason: "bye\u{0}")), .read(Read(requestID: 7, lease: c.ownRef, offset: 0, length: 1)),
                 .heartbeat(Heartbeat(sequence: 0, activeLeases: 0, framesTotal: 0)), .drain(Drain(reason: "again"))]
            },
            // These end the node's own lease; the coordinator takes it back and carries on.
            Case(name: "an invalid frame, then more of the same lease") { c in
                [.frame(Frame(lease: c.ownRef, sampleIndex: c.own?.segment.firstSample ?? 0, pts: 0, seconds: 0, format: .png,
                              width: 640, height: 480, data: png(c))),
                 .read(Read(requestID: 9, lease: c.ownRef, offset: 0, length: 16)),
                 .segmentDone(SegmentDone(lease: c.ownRef, frameCount: 1, decodedFrames: 1, bytesRead: 1, elapsedMillis: 1))]
            },
            Case(name: "a frame with NaN seconds") { c in
                [.frame(Frame(lease: c.ownRef, sampleIndex: c.own?.segment.firstSample ?? 0, pts: 0, seconds: .nan, format: .png,
                              width: 320, height: 240, data: png(c)))]
            },
            Case(name: "SEGMENT_DONE with impossible counts") { c in
                [.segmentDone(SegmentDone(lease: c.ownRef, frameCount: .max, decodedFrames: 0, bytesRead: 0, elapsedMillis: 0)),
                 .segmentDone(SegmentDone(lease: c.ownRef, frameCount: 0, decodedFrames: 0, bytesRead: 0, elapsedMillis: 0))]
            },
            Case(name: "SEGMENT_FAILED with an unknown code and hostile text") { c in
                [.segmentFailed(SegmentFailed(lease: c.ownRef, code: 65535, retryable: false,
                                              message: "\u{0}" + String(repeating: "x\u{1B}[2J", count: 9000)))]
            },
            Case(name: "HELLO offering others', forged and more leases than slots",
                 first: .hello(Hello(nodeName: "h", softwareVersion: "", slots: 1, heldLeases: [
                     LeaseRef(jobID: victimSentinel, segment: 0, epoch: 0),  // replaced by the victim's lease
                     LeaseRef(jobID: UUID(), segment: .max, epoch: .max), LeaseRef(jobID: UUID(), segment: 0, epoch: UInt64(Int64.max) + 1),
                     LeaseRef(jobID: UUID(), segment: UInt32(Int32.max) + 1, epoch: 0)])),
                 needsLease: false) { _ in [] },
            Case(name: "SEGMENT_FAILED CORRUPT_MEDIA from one node") { c in
                [.segmentFailed(SegmentFailed(lease: c.ownRef, code: .corruptMedia, message: "trust me"))]
            },
        ]
        // Messages a node may not send: each must be refused with a fatal ERROR.
        let fatal: [(String, ErrorCode?, @Sendable (Context) -> [Message])] = [
            ("WELCOME from a node", .unexpectedMessage, { _ in [.welcome(Welcome(version: 1, coordinatorID: "me"))] }),
            ("LEASE from a node", .unexpectedMessage, { c in c.own.map { [.lease($0)] } ?? [] }),
            ("LEASE_URL from a node", .unexpectedMessage, { c in
                c.own.map { [.leaseURL(LeaseURL(lease: $0, sourceURL: "http://127.0.0.1:1/x", expiresAtMillis: .max))] } ?? []
            }),
            ("READ_DATA from a node", .unexpectedMessage, { _ in [.readData(ReadData(requestID: 1, offset: .max))] }),
            ("CANCEL from a node", .unexpectedMessage, { c in [.cancel(Cancel(lease: c.other, reason: .cancelled))] }),
            ("a second HELLO", .unexpectedMessage, { _ in [hello("mallory-again")] }),
            ("framesTotal 2^64-1", .invalidField, { _ in [.heartbeat(Heartbeat(sequence: 0, activeLeases: 0, framesTotal: .max))] }),
            ("READ length 0", .malformedFrame, { c in [.read(Read(requestID: 1, lease: c.ownRef, offset: 0, length: 0))] }),
            ("READ length 1 MiB + 1", .malformedFrame, { c in [.read(Read(requestID: 1, lease: c.ownRef, offset: 0, length: Read.maxLength + 1))] }),
            ("READ length 2^32-1", .malformedFrame, { c in [.read(Read(requestID: 1, lease: c.ownRef, offset: .max, length: .max))] }),
            ("a fatal ERROR", nil, { _ in [.error(ErrorMessage(code: 1, fatal: true, message: "", lease: nil))] }),
        ]
        cases += fatal.map { name, code, build in Case(name: name, fatal: .some(code), messages: build) }
        // HELLOs at the boundaries, and messages before HELLO.
        let anyLease = LeaseRef(jobID: UUID(), segment: .max, epoch: .max)
        let firsts: [(String, Message, ErrorCode??)] = [
            ("HELLO slots 0", hello("h", slots: 0), .some(.invalidField)),
            ("HELLO slots 1025", hello("h", slots: 1025), .some(.invalidField)),
            ("HELLO slots 65535", hello("h", slots: .max), .some(.invalidField)),
            ("HELLO versions 0...0", .hello(Hello(minVersion: 0, maxVersion: 0, nodeName: "h", softwareVersion: "", slots: 1)), .some(.unsupportedVersion)),
            ("HELLO versions 65535...0", .hello(Hello(minVersion: .max, maxVersion: 0, nodeName: "h", softwareVersion: "", slots: 1)), .some(.unsupportedVersion)),
            ("HELLO versions 3...65535", .hello(Hello(minVersion: 3, maxVersion: .max, nodeName: "h", softwareVersion: "", slots: 1)), .some(.unsupportedVersion)),
            ("HELLO under another node's name", hello("victim"), .some(.identityMismatch)),
            ("HELLO holding more than 1024 leases", hello("h", slots: 1, held: (0...1024).map { LeaseRef(jobID: anyLease.jobID, segment: $0, epoch: .max) }), .some(.invalidField)),
            ("HELLO holding a lease twice", hello("h", slots: 2, held: [anyLease, anyLease]), .some(.invalidField)),
            ("HELLO with a NUL in a label", hello("h", labels: [Label(key: "gpu", value: "yes\u{0}")]), .some(.invalidField)),
            ("HELLO with a NUL in its version", .hello(Hello(nodeName: "h", softwareVersion: "1\u{0}", slots: 1)), .some(.invalidField)),
            ("READ before HELLO", .read(Read(requestID: 1, lease: anyLease, offset: 0, length: 1)), .some(.unexpectedMessage)),
            ("GOODBYE before HELLO", .goodbye(Goodbye(code: 0, message: "")), .some(.unexpectedMessage)),
            ("HEARTBEAT before HELLO", .heartbeat(Heartbeat(sequence: .max, activeLeases: .max, framesTotal: .max)), .some(.unexpectedMessage)),
        ]
        cases += firsts.map { name, first, code in Case(name: name, first: first, needsLease: false, fatal: code) { _ in [] } }
        return cases
    }()

    @Test func hostileMessagesGetAnErrorOrNothingNeverACrashAHangOrForeignBytes() async throws {
        let h = try await Self.harness(["coordinator.progress_timeout=10m"])
        var files: [UUID: URL] = [:]
        for i in 0..<2 {
            let job = try await H.submit(h, video: try Fixtures.video(seconds: 30, name: "hostile\(i).mp4"), rate: Rational(1, 1))
            files[job.id] = h.service.layout.input(job.id, ext: "mp4")
        }
        // Another node holds a lease all along: nothing the hostile node says may take it away.
        let victim = try await Self.connect(h, "victim")
        let vm = await victim.inbox.wait(timeout: .seconds(10), Self.isLease)
        guard case .lease(let victimLease)? = vm else { Issue.record("the victim got no lease"); await h.stop(); return }

        for (i, c) in Self.cases.enumerated() {
            let name = "mallory-\(i)"
            let started = ContinuousClock.now
            let first: Message? = c.first.map { m in
                // The HELLO cases speak for this session's certificate unless they are about the name.
                if case .hello(var hello) = m, hello.nodeName == "h" {
                    hello.nodeName = name
                    hello.heldLeases = hello.heldLeases.map { $0.jobID == Self.victimSentinel ? victimLease.lease : $0 }
                    return .hello(hello)
                }
                return m
            }
            let node = try await Self.connect(h, name, first: first ?? Self.hello(name))
            var context = Context(own: nil, other: victimLease.lease, fake: LeaseRef(jobID: UUID(), segment: 0, epoch: 1))
            if c.needsLease {
                guard case .lease(let own)? = await node.inbox.wait(timeout: .seconds(10), Self.isLease) else {
                    Issue.record("\(c.name): no lease to work with")
                    await node.close()
                    continue
                }
                context.own = own
            }
            let messages = c.messages(context)
            node.send(messages)
            await node.inbox.settle(quiet: .milliseconds(400), timeout: .seconds(8))
            let heard = await node.inbox.messages
            let closed = await node.inbox.closed
            await node.close()
            let elapsed = ContinuousClock.now - started
            #expect(elapsed < .seconds(20), "\(c.name): took \(elapsed)")

            // Bytes only ever of a video this session was leased, and exactly the file's.
            let granted = Set(heard.compactMap { if case .lease(let l) = $0 { l.lease } else { nil } })
            let reads = Dictionary(messages.compactMap { if case .read(let r) = $0 { (r.requestID, r) } else { nil } },
                                   uniquingKeysWith: { a, _ in a })
            for case .readData(let answer) in heard where answer.isOK && answer.data.readableBytes > 0 {
                guard let read = reads[answer.requestID] else { Issue.record("\(c.name): data for no READ"); continue }
                #expect(granted.contains(read.lease), "\(c.name): bytes of a lease this node does not hold: \(read.lease)")
                if let file = files[read.lease.jobID] {
                    let want = try Self.bytes(of: file, offset: read.offset, count: answer.data.readableBytes)
                    #expect(Array(answer.data.readableBytesView) == want, "\(c.name): bytes differ from the file")
                }
            }
            if let fatal = c.fatal {
                let error = heard.lazy.compactMap { if case .error(let e) = $0, e.fatal { e } else { nil } }.first
                if let code = fatal {
                    #expect(error?.errorCode == code, "\(c.name): \(heard.map(\.type))")
                }
                #expect(closed, "\(c.name): still open after a fatal error")
                #expect(!heard.contains(where: Self.isLease) || c.first == nil, "\(c.name): a refused node got a LEASE")
            } else {
                if c.first != nil {
                    #expect(await Self.welcomeOf(heard)?.resumedLeases == [], "\(c.name): resumed someone else's lease")
                }
                // Nothing fatal: the session stays, and every READ got exactly one answer.
                #expect(!closed, "\(c.name): the coordinator closed the session: \(heard.map(\.type))")
                for id in reads.keys {
                    let answers = heard.filter { if case .readData(let r) = $0 { r.requestID == id } else { false } }.count
                    #expect(answers == 1, "\(c.name): READ \(id) answered \(answers) times")
                }
            }
            try await Self.expectAlive(h, c.name)
        }
        // The victim's lease survived everything said about it.
        #expect(await victim.inbox.messages.contains { if case .cancel = $0 { true } else { false } } == false)
        #expect(try await LeaseStore(database: h.database).isCurrent(victimLease.lease, node: "victim"))
        await victim.close()
        await h.stop()
    }

    /// Frames the codec cannot produce: bad length prefixes, flags, types, truncated and padded payloads.
    @Test func malformedFramesAreAnsweredWithAFatalErrorAndAClose() async throws {
        let h = try await Self.harness()
        func frame(_ type: UInt8, flags: UInt8 = 0, payload: [UInt8], length: UInt32? = nil) -> ByteBuffer {
            var b = ByteBuffer()
            b.writeInteger(length ?? UInt32(payload.count + 2))
            b.writeInteger(type)
            b.writeInteger(flags)
            b.writeBytes(payload)
            return b
        }
        var hb = ByteBuffer()
        FrameCodec.encode(.heartbeat(Heartbeat(sequence: 0, activeLeases: 0, framesTotal: 0)), into: &hb)
        let hbPayload = Array(hb.readableBytesView.dropFirst(6))
        let cases: [(String, ErrorCode?, ([UInt8]) -> ByteBuffer)] = [
            ("length 0", .malformedFrame, { _ in frame(0x03, payload: [], length: 0) }),
            ("length 1", .malformedFrame, { _ in frame(0x03, payload: [], length: 1) }),
            ("length 2^32-1", .frameTooLarge, { _ in frame(0x03, payload: [], length: .max) }),
            ("length over the limit", .frameTooLarge, { _ in frame(0x13, payload: [], length: UInt32(FrameCodec.defaultMaxFrameLength + 1)) }),
            ("unknown type", .unknownMessageType, { _ in frame(0x55, payload: hbPayload) }),
            ("type 0", .unknownMessageType, { _ in frame(0x00, payload: []) }),
            ("flags set", .malformedFrame, { _ in frame(0x03, flags: 1, payload: hbPayload) }),
            ("truncated HEARTBEAT", .malformedFrame, { _ in frame(0x03, payload: Array(hbPayload.prefix(10))) }),
            ("HEARTBEAT with trailing bytes", .malformedFrame, { _ in frame(0x03, payload: hbPayload + [0]) }),
            ("FRAME whose data length runs past the frame", .malformedFrame, { _ in
                frame(0x13, payload: [UInt8](repeating: 0, count: 28 + 4 + 8 + 8) + [0] + [0, 0, 0, 1, 0, 0, 0, 1] + [0xFF, 0xFF, 0xFF, 0xFF] + [1, 2, 3])
            }),
            ("SEGMENT_FAILED with a bool of 2", .malformedFrame, { _ in frame(0x15, payload: [UInt8](repeating: 0, count: 28) + [0, 1, 2, 0, 0]) }),
            ("SEGMENT_FAILED with invalid UTF-8", .malformedFrame, { _ in frame(0x15, payload: [UInt8](repeating: 0, count: 28) + [0, 1, 0, 0, 2, 0xC0, 0x80]) }),
        ]
        for (i, (name, code, build)) in cases.enumerated() {
            let node = "raw-\(i)"
            let raw = try await RawBytesNode.connect(port: h.clusterPort, tls: try h.cluster.nodeTLS(node))
            var hello = ByteBuffer()
            FrameCodec.encode(Self.hello(node), into: &hello)
            let started = ContinuousClock.now
            let (heard, closed) = try await raw.exchange([hello, build([])], timeout: .seconds(6))
            #expect(ContinuousClock.now - started < .seconds(6), "\(name): no close within the bound")
            #expect(closed, "\(name): the connection stayed open")
            let error = heard.lazy.compactMap { if case .error(let e) = $0 { e } else { nil } }.first
            #expect(error?.fatal == true, "\(name): \(heard.map(\.type))")
            if let code { #expect(error?.errorCode == code, "\(name)") }
            try await Self.expectAlive(h, name)
        }
        // A frame that never finishes: the coordinator must not wait for ever (heartbeat timeout) nor crash.
        let raw = try await RawBytesNode.connect(port: h.clusterPort, tls: try h.cluster.nodeTLS("raw-partial"))
        var hello = ByteBuffer()
        FrameCodec.encode(Self.hello("raw-partial"), into: &hello)
        let (_, closed) = try await raw.exchange([hello, frame(0x13, payload: [1, 2, 3], length: 100_000)], timeout: .seconds(8))
        #expect(closed, "a half-sent frame kept the session open past the heartbeat timeout")
        try await Self.expectAlive(h, "a half-sent frame")
        await h.stop()
    }
}
