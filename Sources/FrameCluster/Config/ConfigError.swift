import FrameCore

/// A configuration problem that stops start-up, always naming the key at fault.
public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible, CodedError {
    /// The dotted key, e.g. `coordinator.heartbeat_timeout`; empty for whole-file problems.
    public var key: String
    public var problem: String
    /// Where the value came from: the file, an environment variable or a flag.
    public var source: String

    public init(key: String, problem: String, source: String) {
        self.key = key
        self.problem = problem
        self.source = source
    }

    public var code: ErrorCode { .configInvalid }
    public var message: String { description }
    public var description: String {
        key.isEmpty ? "\(source): \(problem)" : "\(source): \(key): \(problem)"
    }
}
