import FrameCore

/// A delivery that did not happen: what went wrong, in one line for the
/// outbox's `last_error` column and the logs.
public struct NotifyError: Error, Sendable, CustomStringConvertible {
    public var message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}
