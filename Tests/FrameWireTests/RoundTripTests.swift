import FrameCore
import NIOCore
import Testing

@testable import FrameWire

/// encode then decode gives back the same message, for every type and its edge values.
@Suite struct RoundTripTests {
    @Test(arguments: Fixture.samples)
    func roundTripThroughDecodeFrame(sample: Fixture.Sample) throws {
        var buffer = FrameCodec.encode(sample.message)
        let total = buffer.readableBytes
        let decoded = try FrameCodec.decodeFrame(from: &buffer, maxFrameLength: FrameCodec.defaultMaxFrameLength)
        #expect(decoded == sample.message)
        #expect(buffer.readableBytes == 0, "the whole frame of \(total) bytes is consumed")
    }

    @Test(arguments: Fixture.samples)
    func roundTripThroughDecodeBody(sample: Fixture.Sample) throws {
        var frame = FrameCodec.encode(sample.message)
        let prefix = frame.readInteger(as: UInt32.self)
        let length = try #require(prefix)
        #expect(Int(length) == frame.readableBytes, "length counts type, flags and payload")
        #expect(frame.getInteger(at: frame.readerIndex, as: UInt8.self) == sample.message.type.rawValue)
        #expect(frame.getInteger(at: frame.readerIndex + 1, as: UInt8.self) == 0, "flags are 0")
        let decoded = try FrameCodec.decode(body: &frame)
        #expect(decoded == sample.message)
    }

    @Test func encodeAppendsAfterExistingBytes() throws {
        var buffer = ByteBuffer(bytes: [0xAA, 0xBB])
        FrameCodec.encode(.heartbeat(Heartbeat(sequence: 1)), into: &buffer)
        FrameCodec.encode(.drain(Drain(reason: "x")), into: &buffer)
        #expect(buffer.readBytes(length: 2) == [0xAA, 0xBB])
        #expect(try FrameCodec.decodeFrame(from: &buffer, maxFrameLength: 100) == .heartbeat(Heartbeat(sequence: 1)))
        #expect(try FrameCodec.decodeFrame(from: &buffer, maxFrameLength: 100) == .drain(Drain(reason: "x")))
        #expect(buffer.readableBytes == 0)
    }

    @Test func everyMessageTypeIsCoveredBySamples() {
        #expect(Set(Fixture.samples.map(\.message.type)) == Set(MessageType.allCases))
    }

    @Test func nanSurvivesBitForBit() throws {
        let nan = Double(bitPattern: 0x7FF8_0000_0000_1234)
        let frame = Frame(lease: Fixture.lease, sampleIndex: 0, pts: 0, seconds: nan, format: .png, width: 1, height: 1, data: ByteBuffer())
        var buffer = FrameCodec.encode(.frame(frame))
        guard case .frame(let decoded) = try FrameCodec.decodeFrame(from: &buffer, maxFrameLength: 1000) else {
            Issue.record("not a frame"); return
        }
        #expect(decoded.seconds.bitPattern == nan.bitPattern)
    }

    @Test func overlongStringIsCutAtAScalarBoundary() throws {
        // 40,000 two-byte scalars = 80,000 bytes: more than a u16 length allows.
        let text = String(repeating: "é", count: 40_000)
        var buffer = FrameCodec.encode(.drain(Drain(reason: text)))
        guard case .drain(let drain) = try FrameCodec.decodeFrame(from: &buffer, maxFrameLength: 1 << 20) else {
            Issue.record("not a drain"); return
        }
        #expect(drain.reason.utf8.count == 65_534)
        #expect(drain.reason == String(repeating: "é", count: 32_767))
    }

    @Test func codeAccessorsKeepUnknownCodes() {
        let failed = SegmentFailed(lease: Fixture.lease, code: 0xBEEF, retryable: false, message: "")
        #expect(failed.errorCode == nil)
        #expect(SegmentFailed(lease: Fixture.lease, code: .corruptMedia, message: "").retryable == false)
        #expect(SegmentFailed(lease: Fixture.lease, code: .decodeFailed, message: "").retryable == true)
        #expect(SegmentFailed(lease: Fixture.lease, code: 206, retryable: true, message: "").errorCode == .decodeFailed)
        #expect(ReadData(requestID: 1, offset: 0).isOK)
        #expect(ReadData(requestID: 1, offset: 0).errorCode == nil)
        #expect(ReadData(requestID: 1, offset: 0, error: .staleEpoch).errorCode == .staleEpoch)
        #expect(Goodbye(message: "").errorCode == nil)
        #expect(Goodbye(code: .duplicateSession, message: "").code == 112)
        #expect(Cancel(lease: Fixture.lease, reason: .cancelled).errorCode == .cancelled)
        #expect(ErrorMessage(code: 0xFFFF, fatal: true, message: "").errorCode == nil)
        let fromWire = ErrorMessage(WireError(.oversized(length: 5, limit: 4)))
        #expect(fromWire.errorCode == .frameTooLarge && fromWire.fatal && fromWire.lease == nil)
    }

    @Test func leaseRefAccessor() {
        for sample in Fixture.samples {
            switch sample.message.type {
            case .lease, .leaseURL, .read, .frame, .segmentDone, .segmentFailed, .cancel:
                #expect(sample.message.leaseRef != nil, "\(sample.name)")
            case .hello, .welcome, .heartbeat, .readData, .drain, .goodbye:
                #expect(sample.message.leaseRef == nil, "\(sample.name)")
            case .error:
                if case .error(let e) = sample.message { #expect(sample.message.leaseRef == e.lease) }
            }
        }
    }
}
