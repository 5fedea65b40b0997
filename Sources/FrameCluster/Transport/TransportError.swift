import FrameCore

/// Failures of the node transport (TLS setup, connecting, the handshake),
/// each mapped to a stable ``ErrorCode``.
public enum TransportError: Error, Sendable, Equatable, CustomStringConvertible, CodedError {
    case tlsSetup(String, String)
    case connectFailed(String, String)
    case handshakeTimeout
    case rejected(ErrorCode, String)
    case heartbeatTimeout
    case closed

    public var code: ErrorCode {
        switch self {
        case .tlsSetup: .configInvalid
        case .connectFailed: .tlsFailure
        case .handshakeTimeout: .heartbeatTimeout
        case .rejected(let code, _): code
        case .heartbeatTimeout: .heartbeatTimeout
        case .closed: .shuttingDown
        }
    }

    public var message: String { description }

    public var description: String {
        switch self {
        case .tlsSetup(let path, let why): "cannot set up TLS from \(path): \(why)"
        case .connectFailed(let peer, let why): "cannot connect to \(peer): \(why)"
        case .handshakeTimeout: "no WELCOME from the coordinator in time"
        case .rejected(let code, let message): "rejected by the coordinator: \(code.name): \(message)"
        case .heartbeatTimeout: "no frame from the peer within the heartbeat timeout"
        case .closed: "connection closed"
        }
    }
}
