/// An error carrying a stable ``ErrorCode`` and a human-readable message.
///
/// Modules with richer error types (media, wire, store) convert to this at
/// their boundary so that the API, the protocol and the job record can report
/// the same code.
public struct FrameFlowError: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: ErrorCode
    public var message: String

    public init(_ code: ErrorCode, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.name): \(message)" }
}

/// Errors that know their stable ``ErrorCode``.
public protocol CodedError: Error {
    var code: ErrorCode { get }
    var message: String { get }
}

extension FrameFlowError: CodedError {}

extension Error {
    /// This error as a ``FrameFlowError``, mapping unknown errors to `INTERNAL_ERROR`.
    public var asFrameFlowError: FrameFlowError {
        if let e = self as? FrameFlowError { return e }
        if let e = self as? any CodedError { return FrameFlowError(e.code, e.message) }
        return FrameFlowError(.internalError, String(describing: self))
    }
}
