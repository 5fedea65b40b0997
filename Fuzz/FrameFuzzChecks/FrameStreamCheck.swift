import FrameCore
import FrameWire
import NIOCore

/// The frame decoder's contract (proto-spec/framing.md), checked on an arbitrary inbound byte stream.
///
/// Decodes the bytes three ways and requires the results to agree: all at once, one byte at a time (as TCP may
/// deliver them, compacting the buffer now and then as NIO's `ByteToMessageHandler` does), and with a frame limit
/// of ``smallLimit`` (which may only turn frames longer than it into FRAME_TOO_LARGE). At every call of
/// `FrameCodec.decodeFrame` it requires that:
/// - waiting for more bytes consumes nothing, and happens only while the frame is really incomplete;
/// - an accepted frame consumed exactly `4 + length` bytes, re-encodes to exactly those bytes, has the type of its
///   type byte, agrees with `FrameCodec.decode(body:)` and keeps the message rules (READ length, LEASE segment);
/// - a length above the limit is refused from the four prefix bytes alone, before any of the body, consuming nothing;
/// - a length below 2 is refused consuming nothing; any other error consumes exactly the frame, and its code is
///   UNKNOWN_MESSAGE_TYPE exactly when the type byte is unknown.
public enum FrameStreamCheck {
    /// The limit of the third pass: low enough that short inputs reach the oversized path.
    public static let smallLimit = 64

    /// What decoding a stream gave: the accepted frames (as their bytes) and how it stopped.
    public struct Outcome: Sendable {
        public var frames: [[UInt8]]
        public var messages: [Message]
        public var end: End
    }

    /// How decoding a stream stopped.
    public enum End: Sendable, Equatable {
        /// The decoder waits for more bytes; `pending` of them are buffered.
        case waiting(pending: Int)
        /// The decoder refused a frame (the connection closes).
        case failed(WireError)
    }

    /// Checks every invariant above on `bytes`; returns the all-at-once outcome.
    @discardableResult
    public static func check(_ bytes: [UInt8]) throws(FuzzViolation) -> Outcome {
        let limit = FrameCodec.defaultMaxFrameLength
        let whole = try decodeStream(bytes, limit: limit, trickle: false)
        let trickled = try decodeStream(bytes, limit: limit, trickle: true)
        try require(trickled.frames == whole.frames && trickled.end == whole.end,
                    "byte-at-a-time decoding differs: \(summary(trickled)) vs all at once \(summary(whole))")
        let small = try decodeStream(bytes, limit: smallLimit, trickle: false)
        let expected = expectation(limit: smallLimit, whole: whole, bytes: bytes)
        try require(small.frames == expected.frames && small.end == expected.end,
                    "with limit \(smallLimit): \(summary(small)), expected \(summary(expected))")
        return whole
    }

    private static func summary(_ outcome: Outcome) -> String {
        "\(outcome.frames.count) frames, then \(outcome.end)"
    }

    /// What a limit of `limit` must give, derived from the outcome with the default limit: the same frames up to the
    /// first one longer than `limit`, which is refused as oversized instead.
    private static func expectation(limit: Int, whole: Outcome, bytes: [UInt8]) -> Outcome {
        var out = Outcome(frames: [], messages: [], end: whole.end)
        var offset = 0
        for (frame, message) in zip(whole.frames, whole.messages) {
            let length = frame.count - FrameCodec.lengthPrefixSize
            if length > limit {
                out.end = .failed(WireError(.oversized(length: length, limit: limit)))
                return out
            }
            out.frames.append(frame)
            out.messages.append(message)
            offset += frame.count
        }
        // Where the default-limit decoding stopped, a prefix longer than `limit` is refused first.
        if bytes.count - offset >= FrameCodec.lengthPrefixSize {
            let length = Int(prefix(bytes, at: offset))
            if length > limit { out.end = .failed(WireError(.oversized(length: length, limit: limit))) }
        }
        return out
    }

    private static func prefix(_ bytes: [UInt8], at offset: Int) -> UInt32 {
        bytes[offset..<offset + 4].reduce(0) { $0 << 8 | UInt32($1) }
    }

    /// Decodes frames until the decoder waits at the end of the input or fails, checking each call.
    static func decodeStream(_ bytes: [UInt8], limit: Int, trickle: Bool) throws(FuzzViolation) -> Outcome {
        var buffer = ByteBufferAllocator().buffer(capacity: trickle ? 64 : bytes.count)
        var fed = 0
        if !trickle {
            buffer.writeBytes(bytes)
            fed = bytes.count
        }
        var outcome = Outcome(frames: [], messages: [], end: .waiting(pending: 0))
        while true {
            decoding: while true {
                switch try decodeOne(&buffer, limit: limit) {
                case .frame(let frame, let message):
                    outcome.frames.append(frame)
                    outcome.messages.append(message)
                case .waiting:
                    break decoding
                case .failed(let error):
                    outcome.end = .failed(error)
                    return outcome
                }
            }
            if fed == bytes.count {
                outcome.end = .waiting(pending: buffer.readableBytes)
                return outcome
            }
            // Move the unread bytes to the front now and then, as ByteToMessageHandler does.
            if fed % 7 == 0, buffer.readerIndex > 0 { buffer.discardReadBytes() }
            buffer.writeInteger(bytes[fed])
            fed += 1
        }
    }

    enum Step {
        case frame([UInt8], Message)
        case waiting
        case failed(WireError)
    }

    /// One call of `FrameCodec.decodeFrame`, with every per-call invariant.
    static func decodeOne(_ buffer: inout ByteBuffer, limit: Int) throws(FuzzViolation) -> Step {
        let start = buffer.readerIndex
        let available = buffer.readableBytes
        // The bytes as they were before the call (a slice shares the storage): a buffer's getters see
        // only its unread bytes, and the call moves the reader index.
        let input = buffer.getSlice(at: start, length: available)!
        let announced = input.getInteger(at: 0, endianness: .big, as: UInt32.self).map { Int($0) }
        let result = decodeFrame(&buffer, limit: limit)
        let consumed = buffer.readerIndex - start

        switch result {
        case .success(.none):
            try require(consumed == 0, "waiting for more bytes consumed \(consumed) of them")
            if let length = announced {
                try require(length <= limit, "waits on a length \(length) above the limit \(limit) instead of refusing it")
                try require(length >= FrameCodec.headerSize, "waits on a length \(length) below 2 instead of refusing it")
                try require(available < FrameCodec.lengthPrefixSize + length,
                            "waits although the \(4 + length)-byte frame is all there (\(available) bytes)")
            }
            return .waiting

        case .success(.some(let message)):
            guard let length = announced else { throw FuzzViolation("accepted a frame from \(available) bytes") }
            try require(consumed == FrameCodec.lengthPrefixSize + length,
                        "accepted a frame of length \(length) but consumed \(consumed) bytes")
            let frame = input.getBytes(at: 0, length: consumed)!
            let reencoded = Array(FrameCodec.encode(message).readableBytesView)
            try require(reencoded == frame, "\(message.type.name) re-encodes to \(hex(reencoded)), not \(hex(frame))")
            try require(message.type.rawValue == frame[4], "type byte \(frame[4]) decoded as \(message.type.name)")
            var body = input.getSlice(at: FrameCodec.lengthPrefixSize, length: length)!
            switch decodeBody(&body) {
            case .success(let again):
                try require(Array(FrameCodec.encode(again).readableBytesView) == frame, "decode(body:) disagrees")
            case .failure(let error):
                throw FuzzViolation("decodeFrame accepted the \(message.type.name) that decode(body:) refuses: \(error)")
            }
            try checkRules(message)
            return .frame(frame, message)

        case .failure(let error):
            try require([ErrorCode.malformedFrame, .frameTooLarge, .unknownMessageType].contains(error.code),
                        "\(error) maps to \(error.code.name), not a framing code")
            guard let length = announced else { throw FuzzViolation("\(error) before the length prefix arrived") }
            if case .oversized(let reported, let reportedLimit) = error.kind {
                try require(reported == length && reportedLimit == limit && length > limit,
                            "\(error) for length \(length) and limit \(limit)")
                try require(consumed == 0, "refusing an oversized frame consumed \(consumed) bytes")
                // Refused before the body is read: the four prefix bytes alone get the same answer.
                var prefixOnly = input.getSlice(at: 0, length: FrameCodec.lengthPrefixSize)!
                let early = decodeFrame(&prefixOnly, limit: limit)
                try require(early == .failure(error) && prefixOnly.readerIndex == 0,
                            "with only the prefix of an oversized frame the decoder gave \(early), not \(error)")
                return .failed(error)
            }
            try require(length <= limit, "length \(length) above the limit \(limit) refused as \(error), not oversized")
            if length < FrameCodec.headerSize {
                try require(consumed == 0, "refusing length \(length) consumed \(consumed) bytes")
                try require(error.code == .malformedFrame, "length \(length) refused as \(error.code.name)")
                return .failed(error)
            }
            try require(available >= FrameCodec.lengthPrefixSize + length,
                        "\(error) from an incomplete frame (\(available) of \(4 + length) bytes)")
            try require(consumed == FrameCodec.lengthPrefixSize + length,
                        "a refused frame of length \(length) consumed \(consumed) bytes, not all of it")
            let type = input.getInteger(at: FrameCodec.lengthPrefixSize, as: UInt8.self)!
            try require((MessageType(rawValue: type) == nil) == (error.code == .unknownMessageType),
                        "type byte 0x\(String(type, radix: 16)) refused as \(error.code.name)")
            var body = input.getSlice(at: FrameCodec.lengthPrefixSize, length: length)!
            switch decodeBody(&body) {
            case .success(let message):
                throw FuzzViolation("decode(body:) accepts the \(message.type.name) that decodeFrame refused with \(error)")
            case .failure(let again):
                try require(again == error, "decode(body:) refuses with \(again), decodeFrame with \(error)")
            }
            return .failed(error)
        }
    }

    private static func decodeFrame(_ buffer: inout ByteBuffer, limit: Int) -> Result<Message?, WireError> {
        do { return .success(try FrameCodec.decodeFrame(from: &buffer, maxFrameLength: limit)) } catch { return .failure(error) }
    }

    private static func decodeBody(_ body: inout ByteBuffer) -> Result<Message, WireError> {
        do { return .success(try FrameCodec.decode(body: &body)) } catch { return .failure(error) }
    }

    /// Rules proto-spec/messages.md states per message, which the decoder must enforce.
    static func checkRules(_ message: Message) throws(FuzzViolation) {
        switch message {
        case .read(let read):
            try require((1...Read.maxLength).contains(read.length), "READ.length \(read.length) accepted")
        case .lease(let lease):
            try require(lease.lease.segment == lease.segment.index,
                        "LEASE for segment \(lease.lease.segment) carries segment \(lease.segment.index)")
        case .leaseURL(let direct):
            try require(direct.lease.lease.segment == direct.lease.segment.index,
                        "LEASE_URL for segment \(direct.lease.lease.segment) carries segment \(direct.lease.segment.index)")
        default:
            break
        }
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let shown = bytes.prefix(48).map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
        return bytes.count > 48 ? shown + "... (\(bytes.count) bytes)" : shown
    }
}
