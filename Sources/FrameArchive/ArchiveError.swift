import FrameCore

/// A failure writing a ZIP archive, with a stable ``ErrorCode`` (`ARCHIVE_FAILED`, or
/// `STORAGE_FULL` when the disk ran out, which an operator can fix and retry).
public struct ArchiveError: CodedError, Sendable, Equatable, CustomStringConvertible {
    public var code: ErrorCode
    public var message: String

    public init(_ code: ErrorCode, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.name): \(message)" }
}
