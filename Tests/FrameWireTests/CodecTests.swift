import FrameCore
import Foundation
import NIOCore
import Testing

@testable import FrameWire

/// Framing rules: partial input, limits, type and flags, truncation and trailing bytes.
@Suite struct CodecTests {
    let limit = FrameCodec.defaultMaxFrameLength

    @Test func defaultLimitIs16MiBPlus64KiB() {
        #expect(FrameCodec.defaultMaxFrameLength == 16_842_752)
    }

    @Test(arguments: Fixture.smallSamples)
    func everyProperPrefixNeedsMoreBytes(sample: Fixture.Sample) throws {
        let bytes = Fixture.encoded(sample.message)
        for cut in 0..<bytes.count {
            var buffer = ByteBuffer(bytes: bytes[..<cut])
            #expect(try FrameCodec.decodeFrame(from: &buffer, maxFrameLength: limit) == nil, "prefix of \(cut) bytes")
            #expect(buffer.readableBytes == cut, "nothing consumed while waiting")
        }
    }

    @Test func bytesFedOneAtATimeDecodeEveryFrameOnce() throws {
        let messages = Fixture.smallSamples.map(\.message)
        let stream = messages.flatMap(Fixture.encoded)
        var buffer = ByteBuffer()
        var decoded: [Message] = []
        for byte in stream {
            buffer.writeInteger(byte)
            while let message = try FrameCodec.decodeFrame(from: &buffer, maxFrameLength: limit) {
                decoded.append(message)
            }
        }
        #expect(decoded == messages)
    }

    /// A decoded payload owns its bytes: it does not keep the receive buffer it came from (here
    /// 1 MiB, holding two messages) alive while it waits in a queue (issue 13: memory per node).
    @Test func payloadsDoNotPinTheBufferTheyWereReadFrom() throws {
        let lease = LeaseRef(jobID: UUID(), segment: 3, epoch: 1)
        let frame = Message.frame(Frame(lease: lease, sampleIndex: 0, pts: 0, seconds: 0, format: .jpeg,
                                        width: 2, height: 2, data: ByteBuffer(repeating: 0xAB, count: 20_000)))
        let readData = Message.readData(ReadData(requestID: 1, offset: 0, data: ByteBuffer(repeating: 0xCD, count: 30_000)))
        var buffer = ByteBufferAllocator().buffer(capacity: 1 << 20)
        FrameCodec.encode(frame, into: &buffer)
        FrameCodec.encode(readData, into: &buffer)
        let first = try #require(try FrameCodec.decodeFrame(from: &buffer, maxFrameLength: limit))
        let second = try #require(try FrameCodec.decodeFrame(from: &buffer, maxFrameLength: limit))
        #expect(first == frame && second == readData)
        guard case .frame(let f) = first, case .readData(let r) = second else { Issue.record("wrong types"); return }
        #expect(f.data.storageCapacity < 2 * f.data.readableBytes, "FRAME.data holds \(f.data.storageCapacity) bytes")
        #expect(r.data.storageCapacity < 2 * r.data.readableBytes, "READ_DATA.data holds \(r.data.storageCapacity) bytes")
    }

    @Test func oversizedLengthThrowsAsSoonAsThePrefixIsReadable() {
        var buffer = ByteBuffer(bytes: [0x01, 0x01, 0x00, 0x01])  // 16,842,753, no body at all
        #expect(throws: WireError(.oversized(length: 16_842_753, limit: 16_842_752))) {
            try FrameCodec.decodeFrame(from: &buffer, maxFrameLength: limit)
        }
        var huge = ByteBuffer(bytes: [0xFF, 0xFF, 0xFF, 0xFF])
        #expect(throws: WireError(.oversized(length: Int(UInt32.max), limit: 100))) {
            try FrameCodec.decodeFrame(from: &huge, maxFrameLength: 100)
        }
    }

    @Test func lengthEqualToTheLimitIsAcceptedAndOneMoreIsNot() throws {
        let message = Message.drain(Drain(reason: String(repeating: "z", count: 100)))
        let bytes = Fixture.encoded(message)
        let length = bytes.count - 4  // 2 + 2 + 100
        var exact = ByteBuffer(bytes: bytes)
        #expect(try FrameCodec.decodeFrame(from: &exact, maxFrameLength: length) == message)
        var over = ByteBuffer(bytes: bytes)
        #expect(throws: WireError(.oversized(length: length, limit: length - 1))) {
            try FrameCodec.decodeFrame(from: &over, maxFrameLength: length - 1)
        }
    }

    @Test func wireErrorCodes() {
        #expect(WireError(.truncated).code == .malformedFrame)
        #expect(WireError(.malformed("x")).code == .malformedFrame)
        #expect(WireError(.oversized(length: 2, limit: 1)).code == .frameTooLarge)
        #expect(WireError(.unknownType(0x42)).code == .unknownMessageType)
        #expect(WireError(.unknownType(0x42)).asFrameFlowError.code == .unknownMessageType)
    }

    @Test(arguments: [0, 1] as [UInt32])
    func lengthBelowTwoIsMalformed(length: UInt32) {
        var buffer = ByteBuffer()
        buffer.writeInteger(length)
        buffer.writeBytes([0x03, 0x00])
        #expect(throws: WireError.self) { try FrameCodec.decodeFrame(from: &buffer, maxFrameLength: limit) }
        do {
            _ = try FrameCodec.decodeFrame(from: &buffer, maxFrameLength: limit)
        } catch {
            #expect(error.code == .malformedFrame)
        }
    }

    @Test func everyUnknownTypeByteIsRejected() {
        let known = Set(MessageType.allCases.map(\.rawValue))
        for byte in UInt8.min...UInt8.max where !known.contains(byte) {
            var body = ByteBuffer(bytes: [byte, 0x00, 0x00, 0x00])
            #expect(throws: WireError(.unknownType(byte))) { try FrameCodec.decode(body: &body) }
        }
    }

    @Test(arguments: Fixture.smallSamples)
    func nonZeroFlagsAreMalformed(sample: Fixture.Sample) {
        var bytes = Fixture.encoded(sample.message)
        for flags in [0x01, 0x80, 0xFF] as [UInt8] {
            bytes[5] = flags
            var buffer = ByteBuffer(bytes: bytes)
            expectMalformed { try FrameCodec.decodeFrame(from: &buffer, maxFrameLength: limit) }
        }
    }

    @Test(arguments: Fixture.smallSamples)
    func everyTruncatedPayloadIsMalformed(sample: Fixture.Sample) {
        let body = Array(Fixture.encoded(sample.message).dropFirst(4))
        for cut in 0..<body.count {
            var buffer = ByteBuffer(bytes: body[..<cut])
            expectMalformed("cut at \(cut)") { try FrameCodec.decode(body: &buffer) }
        }
    }

    @Test(arguments: Fixture.smallSamples)
    func trailingBytesAreMalformed(sample: Fixture.Sample) {
        var body = Array(Fixture.encoded(sample.message).dropFirst(4))
        body.append(0)
        var buffer = ByteBuffer(bytes: body)
        expectMalformed { try FrameCodec.decode(body: &buffer) }
    }

    @Test func badBodyIsConsumedSoBoundariesSurvive() throws {
        var bytes = Fixture.encoded(.drain(Drain(reason: "a")))
        bytes[5] = 1  // bad flags
        bytes += Fixture.encoded(.heartbeat(Heartbeat(sequence: 5)))
        var buffer = ByteBuffer(bytes: bytes)
        #expect(throws: WireError.self) { try FrameCodec.decodeFrame(from: &buffer, maxFrameLength: limit) }
        #expect(try FrameCodec.decodeFrame(from: &buffer, maxFrameLength: limit) == .heartbeat(Heartbeat(sequence: 5)))
    }

    @Test func hostileCountsFailWithoutAllocating() {
        // LEASE whose keyframe count claims 2^32-1 entries of 16 bytes.
        var lease = Fixture.encoded(.lease(Lease(lease: Fixture.lease, leaseTTLMillis: 1, sourceSize: 1, formatHint: "",
                                                  segment: SegmentSpec(index: 3, streamIndex: 0, timeBase: Rational(1, 1), decodeStartPTS: 0,
                                                                       startPTS: 0, endPTS: 1, firstSample: 0, sampleCount: 0,
                                                                       rate: Rational(1, 1), originMicros: 0, keyframes: []),
                                                  options: OutputOptions())))
        // The keyframe count sits right before the 10 option bytes.
        let countAt = lease.count - 10 - 4
        #expect(lease[countAt..<countAt + 4] == [0, 0, 0, 0])
        lease.replaceSubrange(countAt..<countAt + 4, with: [0xFF, 0xFF, 0xFF, 0xFF])
        var buffer = ByteBuffer(bytes: lease)
        expectMalformed { try FrameCodec.decodeFrame(from: &buffer, maxFrameLength: limit) }
    }

    @Test func invalidUTF8IsRejectedInEveryStringField() {
        // Each string-bearing message with its first string replaced by the ill-formed c3 28.
        let bad: [UInt8] = [0x00, 0x02, 0xC3, 0x28]
        let bodies: [[UInt8]] = [
            [0x20, 0x00] + bad,                                     // DRAIN.reason
            [0x21, 0x00, 0x00, 0x00] + bad,                         // GOODBYE.message
            [0x01, 0x00, 0, 1, 0, 1] + bad + [0, 0, 0, 0, 0, 0, 0, 0],  // HELLO.nodeName
            [0x02, 0x00, 0, 1] + bad + Array(repeating: 0, count: 10),  // WELCOME.coordinatorID
        ]
        for body in bodies {
            var buffer = ByteBuffer(bytes: body)
            expectMalformed("type \(body[0])") { try FrameCodec.decode(body: &buffer) }
        }
    }

    @Test func validUTF8EdgesAreAccepted() throws {
        // U+0000, U+007F, U+0080, U+07FF, U+0800, U+FFFF, U+10000, U+10FFFF
        let text = "\u{0}\u{7F}\u{80}\u{7FF}\u{800}\u{FFFF}\u{10000}\u{10FFFF}"
        var buffer = FrameCodec.encode(.drain(Drain(reason: text)))
        #expect(try FrameCodec.decodeFrame(from: &buffer, maxFrameLength: limit) == .drain(Drain(reason: text)))
    }

    @Test func readLengthBounds() throws {
        for (length, ok) in [(0, false), (1, true), (1_048_576, true), (1_048_577, false), (UInt32.max, false)] as [(UInt32, Bool)] {
            var buffer = FrameCodec.encode(.read(Read(requestID: 1, lease: Fixture.lease, offset: 0, length: length)))
            if ok {
                #expect(try FrameCodec.decodeFrame(from: &buffer, maxFrameLength: limit) != nil)
            } else {
                expectMalformed("length \(length)") { try FrameCodec.decodeFrame(from: &buffer, maxFrameLength: limit) }
            }
        }
    }

    @Test func leaseURLSegmentMustMatchSegmentIndex() {
        var spec = Fixture.segment
        spec.index = 4
        var buffer = FrameCodec.encode(.leaseURL(LeaseURL(
            lease: Lease(lease: Fixture.lease, leaseTTLMillis: 1, sourceSize: 1, formatHint: "", segment: spec, options: OutputOptions()),
            sourceURL: "http://s/o", expiresAtMillis: 1)))
        expectMalformed { try FrameCodec.decodeFrame(from: &buffer, maxFrameLength: limit) }
    }

    @Test func leaseSegmentMustMatchSegmentIndex() {
        var spec = Fixture.segment
        spec.index = 4
        var buffer = FrameCodec.encode(.lease(Lease(lease: Fixture.lease, leaseTTLMillis: 1, sourceSize: 1, formatHint: "",
                                                    segment: spec, options: OutputOptions())))
        expectMalformed { try FrameCodec.decodeFrame(from: &buffer, maxFrameLength: limit) }
    }

    @Test func negotiation() {
        #expect(ProtocolVersion.current == 2)
        #expect(ProtocolVersion.supported.contains(ProtocolVersion.current))
        #expect(ProtocolVersion.negotiate(min: 1, max: 1) == 1)  // a version-1 node keeps version 1
        #expect(ProtocolVersion.negotiate(min: 0, max: 1) == 1)
        #expect(ProtocolVersion.negotiate(min: 1, max: 2) == 2)
        #expect(ProtocolVersion.negotiate(min: 0, max: .max) == 2)
        #expect(ProtocolVersion.negotiate(min: 2, max: 5) == 2)
        #expect(ProtocolVersion.negotiate(min: 3, max: 5) == nil)
        #expect(ProtocolVersion.negotiate(min: 0, max: 0) == nil)
        #expect(ProtocolVersion.negotiate(min: 1, max: 0) == nil)
        #expect(ProtocolVersion.negotiate(min: 2, max: 5, supported: 1...3) == 3)
        #expect(ProtocolVersion.negotiate(min: 0, max: 1, supported: 1...3) == 1)
        #expect(ProtocolVersion.negotiate(min: 4, max: 9, supported: 1...3) == nil)
        #expect(ProtocolVersion.negotiate(min: 3, max: 2, supported: 1...3) == nil)
    }

    @Test func onlyLeaseURLIsNewInVersion2() {
        // Version 2 adds LEASE_URL and changes nothing else (proto-spec/README.md, "Versioning").
        #expect(MessageType.allCases.filter { $0.sinceVersion == 2 } == [.leaseURL])
        #expect(MessageType.allCases.allSatisfy { $0.sinceVersion <= ProtocolVersion.current })
        #expect(ProtocolVersion.supported == 1...2)
    }

    @Test func messageTypeDirections() {
        let fromNode = MessageType.allCases.filter { $0.direction == .nodeToCoordinator }
        let fromCoordinator = MessageType.allCases.filter { $0.direction == .coordinatorToNode }
        #expect(fromNode == [.hello, .read, .frame, .segmentDone, .segmentFailed])
        #expect(fromCoordinator == [.welcome, .lease, .readData, .cancel, .leaseURL])
    }
}

/// Expects a WireError with the MALFORMED_FRAME code (truncated or malformed).
func expectMalformed(
    _ comment: Comment? = nil, sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () throws -> Message?
) {
    do {
        let message = try body()
        Issue.record("expected MALFORMED_FRAME, decoded \(String(describing: message)). \(comment?.rawValue ?? "")",
                     sourceLocation: sourceLocation)
    } catch let error as WireError {
        #expect(error.code == .malformedFrame, comment, sourceLocation: sourceLocation)
    } catch {
        Issue.record("untyped error \(error)", sourceLocation: sourceLocation)
    }
}
