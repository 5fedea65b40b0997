import FrameCore

/// Why a frame could not be decoded, with the stable ``ErrorCode`` to put in
/// the `ERROR` frame that answers it.
///
/// The decoder never traps and never returns a half-decoded message: every
/// problem with the peer's bytes becomes one of these four kinds, so the
/// transport can send a precise `ERROR` and close. All of them are fatal to the
/// connection (see `proto-spec/framing.md`), because after a bad frame the two
/// sides no longer agree on the state of the session.
public struct WireError: Error, Sendable, Equatable, CodedError, CustomStringConvertible {
    /// What went wrong, precisely enough for tests and logs.
    public enum Kind: Sendable, Equatable {
        /// The payload ended before the message did (always inside one frame:
        /// a frame whose bytes have not all arrived is not an error, just not yet decodable).
        case truncated
        /// The length prefix announced more than the receiver's limit.
        case oversized(length: Int, limit: Int)
        /// The type byte names no message of the negotiated version.
        case unknownType(UInt8)
        /// Any other violation of the encoding: flags, bools, UTF-8, ranges, trailing bytes.
        case malformed(String)
    }

    public var kind: Kind
    public var message: String

    /// The code for the answering `ERROR` frame.
    public var code: ErrorCode {
        switch kind {
        case .truncated, .malformed: .malformedFrame
        case .oversized: .frameTooLarge
        case .unknownType: .unknownMessageType
        }
    }

    public init(_ kind: Kind, message: String? = nil) {
        self.kind = kind
        self.message = message ?? Self.defaultMessage(for: kind)
    }

    /// The same, with the label spelled out.
    public init(kind: Kind, message: String? = nil) {
        self.init(kind, message: message)
    }

    public var description: String { "\(code.name): \(message)" }

    static func truncated(_ what: String) -> WireError {
        WireError(.truncated, message: "payload ends inside \(what)")
    }

    static func malformed(_ why: String) -> WireError {
        WireError(.malformed(why), message: why)
    }

    private static func defaultMessage(for kind: Kind) -> String {
        switch kind {
        case .truncated: "payload ends before the message is complete"
        case .oversized(let length, let limit): "frame length \(length) exceeds the limit of \(limit) bytes"
        case .unknownType(let type): "unknown message type 0x\(String(type, radix: 16))"
        case .malformed(let why): why
        }
    }
}
