import FrameCore
import FrameWire

/// The node's side of its connection to the coordinator, as an explicit state machine.
///
/// States: `helloSent` (TLS is up and HELLO is on the wire) -> `established`
/// (WELCOME received) -> `draining` (finishing leases, taking none) ->
/// `closed`. The agent performs the actions returned here; the rules of
/// `proto-spec/handshake.md` for the node live in this one place.
public struct NodeConnectionStateMachine: Sendable {
    public enum State: Sendable, Equatable {
        case helloSent
        case established(version: UInt16)
        case draining(version: UInt16)
        case closed
    }

    /// How the connection ended, which decides whether the agent reconnects.
    public enum Ending: Sendable, Equatable {
        /// Try again after a backoff (network trouble, coordinator restart, timeout).
        case reconnect(String)
        /// Do not reconnect: the operator revoked this node or its configuration is wrong.
        case stop(ErrorCode, String)
    }

    public enum Action: Sendable, Equatable {
        /// Handshake complete: start heartbeats with these timings.
        case established(Welcome)
        /// Record liveness (every frame counts; heartbeats carry nothing else we need).
        case alive
        /// Work for the lease runner (LEASE, LEASE_URL, READ_DATA, CANCEL, non-fatal ERROR about a lease).
        case deliver(Message)
        /// Stop taking leases; finish the current ones.
        case drain(String)
        /// Close the connection and end this way.
        case end(Ending)
        /// Protocol violation by the coordinator: send a fatal ERROR, close, reconnect.
        case violation(ErrorCode, String)
    }

    public private(set) var state: State = .helloSent
    /// The versions this node announced in HELLO (fewer than the build speaks when direct reads are off).
    public let versions: ClosedRange<UInt16>

    public init(versions: ClosedRange<UInt16> = ProtocolVersion.supported) {
        self.versions = versions
    }

    public mutating func receive(_ message: Message) -> Action {
        switch state {
        case .closed:
            return .alive
        case .helloSent:
            switch message {
            case .welcome(let welcome):
                guard versions.contains(welcome.version) else {
                    state = .closed
                    return .violation(.unsupportedVersion, "coordinator chose version \(welcome.version)")
                }
                state = .established(version: welcome.version)
                return .established(welcome)
            case .error(let error):
                state = .closed
                return .end(Self.ending(for: error))
            case .goodbye(let bye):
                state = .closed
                return .end(.reconnect("goodbye before welcome: \(bye.message)"))
            default:
                state = .closed
                return .violation(.unexpectedMessage, "expected WELCOME, got \(message.type)")
            }
        case .established(let version), .draining(let version):
            // A type the negotiated version does not have is unknown here, whatever this build knows.
            guard message.type.sinceVersion <= version else {
                state = .closed
                return .violation(.unknownMessageType, "\(message.type.name) does not exist in protocol version \(version)")
            }
            switch message {
            case .heartbeat:
                return .alive
            case .lease, .leaseURL, .readData, .cancel:
                return .deliver(message)
            case .drain(let drain):
                state = .draining(version: version)
                return .drain(drain.reason)
            case .goodbye(let bye):
                state = .closed
                if ErrorCode(rawValue: bye.code) == .duplicateSession {
                    return .end(.stop(.duplicateSession, "another process connected with this node's name: \(bye.message)"))
                }
                return .end(.reconnect("coordinator said goodbye: \(bye.message)"))
            case .error(let error):
                if error.fatal {
                    state = .closed
                    return .end(Self.ending(for: error))
                }
                return .deliver(message)
            case .hello, .welcome, .read, .frame, .segmentDone, .segmentFailed:
                state = .closed
                return .violation(.unexpectedMessage, "\(message.type) is not sent by a coordinator")
            }
        }
    }

    public mutating func close() { state = .closed }

    /// Errors that reconnecting cannot fix stop the agent; the rest reconnect.
    static func ending(for error: ErrorMessage) -> Ending {
        let code = ErrorCode(rawValue: error.code)
        switch code {
        case .nodeRevoked?, .identityMismatch?, .unsupportedVersion?:
            return .stop(code!, error.message)
        default:
            return .reconnect("coordinator error \(code?.name ?? String(error.code)): \(error.message)")
        }
    }
}
