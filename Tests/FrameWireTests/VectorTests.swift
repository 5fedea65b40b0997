import FrameCore
import Foundation
import NIOCore
import Testing

@testable import FrameWire

/// The spec's hand-written vectors against the codec, in both directions.
@Suite struct VectorTests {
    /// The message each valid vector file must decode to, built here by hand
    /// from the annotations in the file, not from the encoder.
    static let expected: [String: Message] = {
        let l = Fixture.lease
        return [
            "hello": .hello(Hello(minVersion: 1, maxVersion: 1, nodeName: "node-a", softwareVersion: "1.0.0", slots: 4,
                                  labels: [Label(key: "gpu", value: "none"), Label(key: "zone", value: "zürich")],
                                  heldLeases: [l])),
            "welcome": .welcome(Welcome(version: 1, coordinatorID: "coord-1", heartbeatIntervalMillis: 1000,
                                        heartbeatTimeoutMillis: 3000, resumedLeases: [l])),
            "heartbeat": .heartbeat(Heartbeat(sequence: 42, activeLeases: 2, framesTotal: 0x0102_0304_0506_0708)),
            "lease": .lease(Lease(lease: l, leaseTTLMillis: 30_000, sourceSize: 10_485_760, formatHint: "mp4",
                                  segment: Fixture.segment,
                                  options: OutputOptions(format: .jpeg, quality: 2, maxWidth: 1280, maxHeight: 720))),
            "lease_url": .leaseURL(LeaseURL(
                lease: Lease(lease: l, leaseTTLMillis: 30_000, sourceSize: 10_485_760, formatHint: "mp4",
                             segment: Fixture.segment,
                             options: OutputOptions(format: .jpeg, quality: 2, maxWidth: 1280, maxHeight: 720)),
                sourceURL: "https://s3.example/bkt/in.mp4?X-Amz-Signature=00ff", expiresAtMillis: 1_800_000_000_000)),
            "hello_v2": .hello(Hello(minVersion: 1, maxVersion: 2, nodeName: "node-a", softwareVersion: "1.0.0", slots: 4,
                                     labels: [], heldLeases: [])),
            "read": .read(Read(requestID: 9, lease: l, offset: 65_536, length: 1_048_576)),
            "read_data": .readData(ReadData(requestID: 9, offset: 65_536, status: 0, data: ByteBuffer(bytes: [0x00, 0x01, 0x02, 0xFE, 0xFF]))),
            "read_data_error": .readData(ReadData(requestID: 9, offset: 65_536, status: 108, data: ByteBuffer())),
            "read_data_out_of_range": .readData(ReadData(requestID: 9, offset: .max, status: 110, data: ByteBuffer())),
            "cancel_invalid_frame": .cancel(Cancel(lease: l, reason: 212)),
            "error_invalid_field": .error(ErrorMessage(code: 114, fatal: true, message: "slt", lease: nil)),
            "frame": .frame(Frame(lease: l, sampleIndex: 2, pts: 30720, seconds: 2.0, format: .jpeg, width: 1280, height: 720,
                                  data: ByteBuffer(bytes: [0xFF, 0xD8, 0xFF, 0xD9]))),
            "segment_done": .segmentDone(SegmentDone(lease: l, frameCount: 2, decodedFrames: 31, bytesRead: 1_048_576, elapsedMillis: 1500)),
            "segment_failed": .segmentFailed(SegmentFailed(lease: l, code: 206, retryable: true, message: "erreur \u{2717}")),
            "segment_failed_unknown_code": .segmentFailed(SegmentFailed(lease: l, code: 0xBEEF, retryable: false, message: "")),
            "cancel": .cancel(Cancel(lease: l, reason: 209)),
            "drain": .drain(Drain(reason: "maintenance")),
            "goodbye": .goodbye(Goodbye(code: 112, message: "replaced")),
            "goodbye_normal": .goodbye(Goodbye(code: 0, message: "")),
            "error": .error(ErrorMessage(code: 108, fatal: false, message: "stale", lease: l)),
            "error_fatal": .error(ErrorMessage(code: 104, fatal: true, message: "", lease: nil)),
        ]
    }()

    static let validNames = VectorFiles.names(in: VectorFiles.validDirectory)
    static let invalidNames = VectorFiles.names(in: VectorFiles.invalidDirectory)

    @Test func everyVectorFileHasAnExpectedMessageAndViceVersa() {
        #expect(Set(Self.validNames) == Set(Self.expected.keys))
    }

    @Test func everyMessageTypeHasAVector() {
        let covered = Set(Self.expected.values.map(\.type))
        #expect(covered == Set(MessageType.allCases))
    }

    @Test func theRequiredInvalidVectorsExist() {
        let required: Set = ["truncated", "oversized", "unknown_type", "bad_flags", "bad_utf8", "trailing_bytes"]
        #expect(required.isSubset(of: Set(Self.invalidNames)))
    }

    @Test(arguments: validNames)
    func validVectorDecodesToTheExpectedMessage(name: String) throws {
        let vector = try VectorFiles.load(name, in: VectorFiles.validDirectory)
        let expected = try #require(Self.expected[name])
        // The length prefix must describe the file exactly, or the vector itself is wrong.
        let length = vector.bytes.prefix(4).reduce(0) { $0 << 8 | Int($1) }
        #expect(length + 4 == vector.bytes.count, "length prefix \(length) vs \(vector.bytes.count - 4) bytes")
        var buffer = ByteBuffer(bytes: vector.bytes)
        let decoded = try FrameCodec.decodeFrame(from: &buffer, maxFrameLength: FrameCodec.defaultMaxFrameLength)
        #expect(decoded == expected)
        #expect(buffer.readableBytes == 0)
        #expect(decoded?.type.rawValue == vector.bytes[4])
    }

    @Test(arguments: validNames)
    func expectedMessageEncodesToTheVectorBytes(name: String) throws {
        let vector = try VectorFiles.load(name, in: VectorFiles.validDirectory)
        let expected = try #require(Self.expected[name])
        let bytes = Fixture.encoded(expected)
        #expect(bytes == vector.bytes, "encoded \(hex(bytes))\n expected \(hex(vector.bytes))")
    }

    @Test(arguments: invalidNames)
    func invalidVectorIsRejectedWithTheExpectedCode(name: String) throws {
        let vector = try VectorFiles.load(name, in: VectorFiles.invalidDirectory)
        let expectName = try #require(vector.expect, "missing '# expect: NAME' line")
        let expectCode = try #require(ErrorCode(name: expectName), "unknown error name \(expectName)")
        var buffer = ByteBuffer(bytes: vector.bytes)
        do {
            let message = try FrameCodec.decodeFrame(from: &buffer, maxFrameLength: FrameCodec.defaultMaxFrameLength)
            Issue.record("expected \(expectName), got \(String(describing: message)) (nil = waiting for more bytes)")
        } catch {
            #expect(error.code == expectCode, "\(error)")
        }
    }

    private func hex(_ bytes: [UInt8]) -> String {
        bytes.map { String(format: "%02x", $0) }.joined()
    }
}
