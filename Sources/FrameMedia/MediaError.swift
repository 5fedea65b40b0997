import FrameCore

/// A failure while probing, decoding or encoding media, with a stable ``ErrorCode``.
///
/// Every FrameMedia entry point throws this typed error so callers (the coordinator at
/// upload time, the node for a lease, the CLI) can report the same code the user sees in the
/// API without string matching. The message is for humans and may carry FFmpeg's own text.
public struct MediaError: CodedError, Sendable, Equatable, CustomStringConvertible {
    public var code: ErrorCode
    public var message: String

    public init(_ code: ErrorCode, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.name): \(message)" }

    /// This error in the shared vocabulary, for the API and the wire protocol.
    public var frameFlowError: FrameFlowError { FrameFlowError(code, message) }
}
