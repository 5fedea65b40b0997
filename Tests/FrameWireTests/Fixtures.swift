import FrameCore
import Foundation
import NIOCore
import Testing

@testable import FrameWire

/// Values shared by the tests: the LeaseRef `L` of proto-spec/vectors/README.md
/// and a set of sample messages covering every type and its edge values.
enum Fixture {
    static let job = UUID(uuidString: "00112233-4455-6677-8899-AABBCCDDEEFF")!
    /// `L` in the vector files.
    static let lease = LeaseRef(jobID: job, segment: 3, epoch: 7)

    static func buffer(_ bytes: [UInt8]) -> ByteBuffer { ByteBuffer(bytes: bytes) }

    static func encoded(_ message: Message) -> [UInt8] {
        let buffer = FrameCodec.encode(message)
        return Array(buffer.readableBytesView)
    }

    static let segment = SegmentSpec(
        index: 3, streamIndex: 0, timeBase: Rational(1, 15360), decodeStartPTS: 30720,
        startPTS: 30720, endPTS: 61440, firstSample: 2, sampleCount: 2, rate: Rational(1, 1),
        originMicros: 0, keyframes: [Keyframe(pts: 30720, pos: 48), Keyframe(pts: 46080, pos: -1)]
    )

    /// A named message for parameterized tests (the name shows in test output).
    struct Sample: Sendable, CustomTestStringConvertible {
        var name: String
        var message: Message
        var testDescription: String { name }
    }

    /// Every message type at least twice: ordinary values and edge values
    /// (empty and maximal strings, extreme integers, unicode, large counts).
    static let samples: [Sample] = {
        let maxString = String(repeating: "a", count: 65_535)
        let unicode = "żółć 🎞️ 映像 e\u{301} \u{0}nul"
        let extremeLease = LeaseRef(jobID: UUID(uuid: (255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255)),
                                    segment: .max, epoch: .max)
        let zeroLease = LeaseRef(jobID: UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)), segment: 0, epoch: 0)
        let extremeSegment = SegmentSpec(
            index: .max, streamIndex: .max, timeBase: Rational(.min, .max), decodeStartPTS: .min,
            startPTS: .min, endPTS: .max, firstSample: .max, sampleCount: .max, rate: Rational(-1, 0),
            originMicros: .min, keyframes: (0..<1000).map { Keyframe(pts: Int64.min + Int64($0), pos: Int64.max - Int64($0)) }
        )
        let bigData = ByteBuffer(bytes: (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        return [
            Sample(name: "hello", message: .hello(Hello(nodeName: "node-a", softwareVersion: "1.0.0", slots: 4,
                                                         labels: [Label(key: "gpu", value: "none")], heldLeases: [lease]))),
            Sample(name: "hello-empty", message: .hello(Hello(minVersion: 0, maxVersion: 0, nodeName: "", softwareVersion: "", slots: 0))),
            Sample(name: "hello-max", message: .hello(Hello(
                minVersion: .max, maxVersion: .max, nodeName: maxString, softwareVersion: unicode, slots: .max,
                labels: Array(repeating: Label(key: "", value: ""), count: 65_535),
                heldLeases: Array(repeating: extremeLease, count: 65_535)))),
            Sample(name: "welcome", message: .welcome(Welcome(version: 1, coordinatorID: "coord-1", resumedLeases: [lease, zeroLease]))),
            Sample(name: "welcome-edge", message: .welcome(Welcome(version: .max, coordinatorID: unicode,
                                                                    heartbeatIntervalMillis: .max, heartbeatTimeoutMillis: 0))),
            Sample(name: "heartbeat", message: .heartbeat(Heartbeat(sequence: 0))),
            Sample(name: "heartbeat-max", message: .heartbeat(Heartbeat(sequence: .max, activeLeases: .max, framesTotal: .max))),
            Sample(name: "lease", message: .lease(Lease(lease: lease, leaseTTLMillis: 30_000, sourceSize: 10_485_760, formatHint: "mp4",
                                                       segment: segment, options: OutputOptions(format: .jpeg, quality: 2, maxWidth: 1280, maxHeight: 720)))),
            Sample(name: "lease-extreme", message: .lease(Lease(lease: LeaseRef(jobID: job, segment: .max, epoch: .max), leaseTTLMillis: .max,
                                                               sourceSize: .max, formatHint: "", segment: extremeSegment,
                                                               options: OutputOptions(format: .png, quality: .max, maxWidth: .max, maxHeight: .max)))),
            Sample(name: "lease-url", message: .leaseURL(LeaseURL(
                lease: Lease(lease: lease, leaseTTLMillis: 30_000, sourceSize: 10_485_760, formatHint: "mp4", segment: segment,
                             options: OutputOptions(format: .png, quality: 2, maxWidth: 0, maxHeight: 0)),
                sourceURL: "http://127.0.0.1:9000/b/uploads/j/input.mp4?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=" + String(repeating: "0", count: 64),
                expiresAtMillis: 1_800_000_000_000))),
            Sample(name: "lease-url-extreme", message: .leaseURL(LeaseURL(
                lease: Lease(lease: LeaseRef(jobID: job, segment: .max, epoch: .max), leaseTTLMillis: .max, sourceSize: .max,
                             formatHint: "", segment: extremeSegment,
                             options: OutputOptions(format: .jpeg, quality: .max, maxWidth: .max, maxHeight: .max)),
                sourceURL: maxString, expiresAtMillis: .max))),
            Sample(name: "read", message: .read(Read(requestID: 0, lease: lease, offset: 0, length: 1))),
            Sample(name: "read-max", message: .read(Read(requestID: .max, lease: extremeLease, offset: .max, length: Read.maxLength))),
            Sample(name: "read-data", message: .readData(ReadData(requestID: 9, offset: 65_536, data: ByteBuffer(bytes: [0, 1, 2, 0xFE, 0xFF])))),
            Sample(name: "read-data-eof", message: .readData(ReadData(requestID: 9, offset: .max))),
            Sample(name: "read-data-1MiB", message: .readData(ReadData(requestID: 1, offset: 0, data: bigData))),
            Sample(name: "read-data-error", message: .readData(ReadData(requestID: 9, offset: 1, error: .readOutOfRange))),
            Sample(name: "frame", message: .frame(Frame(lease: lease, sampleIndex: 2, pts: 30720, seconds: 2.0, format: .jpeg,
                                                         width: 1280, height: 720, data: ByteBuffer(bytes: [0xFF, 0xD8, 0xFF, 0xD9])))),
            Sample(name: "frame-min", message: .frame(Frame(lease: zeroLease, sampleIndex: 0, pts: .min, seconds: -0.0, format: .png,
                                                             width: 0, height: 0, data: ByteBuffer()))),
            Sample(name: "frame-max", message: .frame(Frame(lease: extremeLease, sampleIndex: .max, pts: .max, seconds: .infinity,
                                                             format: .jpeg, width: .max, height: .max, data: bigData))),
            Sample(name: "frame-subnormal", message: .frame(Frame(lease: lease, sampleIndex: 1, pts: -1, seconds: .leastNonzeroMagnitude,
                                                                   format: .png, width: 1, height: 1, data: ByteBuffer(bytes: [0])))),
            Sample(name: "segment-done", message: .segmentDone(SegmentDone(lease: lease, frameCount: 2, decodedFrames: 31, bytesRead: 1 << 20, elapsedMillis: 1500))),
            Sample(name: "segment-done-max", message: .segmentDone(SegmentDone(lease: extremeLease, frameCount: .max, decodedFrames: .max, bytesRead: .max, elapsedMillis: .max))),
            Sample(name: "segment-failed", message: .segmentFailed(SegmentFailed(lease: lease, code: .decodeFailed, message: "erreur ✗"))),
            Sample(name: "segment-failed-unknown", message: .segmentFailed(SegmentFailed(lease: lease, code: 0xBEEF, retryable: false, message: ""))),
            Sample(name: "segment-failed-long", message: .segmentFailed(SegmentFailed(lease: lease, code: .max, retryable: true, message: maxString))),
            Sample(name: "cancel", message: .cancel(Cancel(lease: lease, reason: .cancelled))),
            Sample(name: "cancel-unknown", message: .cancel(Cancel(lease: zeroLease, reason: 0))),
            Sample(name: "drain", message: .drain(Drain(reason: "maintenance"))),
            Sample(name: "drain-empty", message: .drain(Drain(reason: ""))),
            Sample(name: "drain-unicode", message: .drain(Drain(reason: unicode))),
            Sample(name: "goodbye", message: .goodbye(Goodbye(code: .duplicateSession, message: "replaced"))),
            Sample(name: "goodbye-normal", message: .goodbye(Goodbye(message: ""))),
            Sample(name: "error", message: .error(ErrorMessage(code: .staleEpoch, fatal: false, message: "stale", lease: lease))),
            Sample(name: "error-fatal", message: .error(ErrorMessage(code: .unexpectedMessage, fatal: true, message: ""))),
            Sample(name: "error-unknown", message: .error(ErrorMessage(code: 0xFFFF, fatal: true, message: unicode, lease: extremeLease))),
        ]
    }()

    /// Small samples only, for tests that cut or mutate every byte.
    static let smallSamples: [Sample] = samples.filter { encoded($0.message).count <= 512 }
}
