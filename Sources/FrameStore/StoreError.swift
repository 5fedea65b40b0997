import FrameCore

/// Everything that can go wrong in the store, typed so that callers can map
/// each case to the right answer without parsing messages.
///
/// `unavailable` means "try again later" (HTTP 503, /ready false): the server
/// is down, restarting or unreachable, or the pool could not hand out a
/// connection in time. `uniqueViolation` keeps the constraint name so that
/// the API can answer 409 for a taken e-mail address. `queryFailed` keeps the
/// SQLSTATE for logs and for the store's own retry of deadlocks.
public enum StoreError: CodedError, Sendable, Equatable, CustomStringConvertible {
    /// The database cannot be reached (connection refused, lost, shutting down) or the pool timed out.
    case unavailable(String)
    /// A statement failed; `sqlState` is PostgreSQL's five-character code when known.
    case queryFailed(sqlState: String?, message: String)
    /// A unique constraint (SQLSTATE 23505) was violated; `constraint` names it when known.
    case uniqueViolation(constraint: String?, message: String)
    /// A value could not be converted between SQL text and a Swift type.
    case decoding(String)
    /// The referenced row does not exist (e.g. an unknown job id).
    case notFound(String)
    /// The requested change is not allowed by ``JobStatus`` / ``SegmentState`` from the current state.
    case invalidState(String)
    /// A parameter cannot be sent as given (a NUL in a text value, which libpq would truncate at).
    case invalidParameter(String)

    public var code: ErrorCode {
        switch self {
        case .unavailable: .databaseUnavailable
        case .queryFailed, .decoding: .internalError
        case .uniqueViolation: .conflict
        case .notFound: .notFound
        case .invalidState: .invalidJobState
        case .invalidParameter: .validationFailed
        }
    }

    public var message: String {
        switch self {
        case .unavailable(let m): "database unavailable: \(m)"
        case .queryFailed(let state, let m): "query failed (\(state ?? "no SQLSTATE")): \(m)"
        case .uniqueViolation(let c, let m): "unique violation (\(c ?? "unknown constraint")): \(m)"
        case .decoding(let m): "decoding failed: \(m)"
        case .notFound(let m): m
        case .invalidState(let m): m
        case .invalidParameter(let m): "invalid parameter: \(m)"
        }
    }

    /// The SQLSTATE behind this error, if it came from the server.
    public var sqlState: String? {
        switch self {
        case .queryFailed(let s, _): s
        case .uniqueViolation: "23505"
        default: nil
        }
    }

    /// Deadlocks and serialization failures: the whole transaction may simply be run again.
    var isTransient: Bool { sqlState == "40P01" || sqlState == "40001" }

    public var description: String { "\(code.name): \(message)" }
}
