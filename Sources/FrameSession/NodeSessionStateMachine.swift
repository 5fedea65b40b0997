import FrameCore
import FrameWire

/// The coordinator's side of one node connection, as an explicit state machine.
///
/// States: `awaitingHello` (TLS is up, nothing said yet) -> `established`
/// (after a valid HELLO and our WELCOME) -> `draining` (no new leases) ->
/// `closed`. All transitions live here; the session only performs the actions
/// this type returns, so the rules in `proto-spec/handshake.md` are tested on
/// their own without sockets.
public struct NodeSessionStateMachine: Sendable {
    public enum State: Sendable, Equatable {
        case awaitingHello
        case established(node: String, version: UInt16)
        case draining(node: String, version: UInt16)
        case closed
    }

    /// What the session must do in response to an inbound message.
    public enum Action: Sendable, Equatable {
        /// Register the node and answer WELCOME with this version.
        case acceptHello(Hello, version: UInt16)
        /// Send a fatal ERROR with this code, then close.
        case reject(ErrorCode, String)
        /// The peer is alive (any frame counts); record its heartbeat figures.
        case heartbeat(Heartbeat)
        /// Pass a lease-related message to the scheduler.
        case deliver(Message)
        /// The node asked to drain: lease nothing new to it.
        case startDraining(reason: String)
        /// The peer said goodbye or sent a fatal error: close quietly. `graceful`: a GOODBYE with
        /// the normal-close code (a node leaving on purpose), not an error.
        case close(reason: String, graceful: Bool)
        /// Nothing to do.
        case ignore
    }

    public private(set) var state: State = .awaitingHello
    /// The authenticated certificate common name of the peer.
    public let certificateName: String
    /// Whether the operator has revoked `certificateName` (looked up by the
    /// session before the first frame, since that lookup is asynchronous).
    public let isRevoked: Bool

    public init(certificateName: String, isRevoked: Bool = false) {
        self.certificateName = certificateName
        self.isRevoked = isRevoked
    }

    public var nodeName: String? {
        switch state {
        case .established(let n, _), .draining(let n, _): n
        default: nil
        }
    }

    public var acceptsLeases: Bool {
        if case .established = state { return true }
        return false
    }

    public mutating func receive(_ inbound: Message) -> Action {
        let message = inbound
        switch state {
        case .closed:
            return .ignore
        case .awaitingHello:
            guard case .hello(let hello) = message else {
                state = .closed
                return .reject(.unexpectedMessage, "expected HELLO first, got \(message.type)")
            }
            guard let version = ProtocolVersion.negotiate(min: hello.minVersion, max: hello.maxVersion) else {
                state = .closed
                return .reject(.unsupportedVersion,
                    "node speaks versions \(hello.minVersion)...\(hello.maxVersion), coordinator \(ProtocolVersion.supported)")
            }
            guard hello.nodeName == certificateName else {
                state = .closed
                return .reject(.identityMismatch,
                    "HELLO names '\(hello.nodeName)' but the certificate is for '\(certificateName)'")
            }
            guard !isRevoked else {
                state = .closed
                return .reject(.nodeRevoked, "node '\(hello.nodeName)' has been revoked by an operator")
            }
            if case .refuse(let problem) = NodeMessageRules.check(message) {
                state = .closed
                return .reject(.invalidField, problem)
            }
            state = .established(node: hello.nodeName, version: version)
            return .acceptHello(hello, version: version)
        case .established(let node, let version), .draining(let node, let version):
            // Every field is checked (and free text normalised) before anything uses it.
            let message: Message
            switch NodeMessageRules.check(inbound) {
            case .accept(let checked): message = checked
            case .refuse(let problem):
                state = .closed
                return .reject(.invalidField, problem)
            }
            // A type the negotiated version does not have is unknown on this session (framing.md).
            guard message.type.sinceVersion <= version else {
                state = .closed
                return .reject(.unknownMessageType, "\(message.type.name) does not exist in protocol version \(version)")
            }
            switch message {
            case .hello:
                state = .closed
                return .reject(.unexpectedMessage, "HELLO after the handshake")
            case .welcome, .lease, .leaseURL, .readData, .cancel:
                state = .closed
                return .reject(.unexpectedMessage, "\(message.type) is sent by the coordinator, not a node")
            case .heartbeat(let hb):
                return .heartbeat(hb)
            case .read, .frame, .segmentDone, .segmentFailed:
                return .deliver(message)
            case .drain(let drain):
                state = .draining(node: node, version: version)
                return .startDraining(reason: drain.reason)
            case .goodbye(let bye):
                state = .closed
                return .close(reason: "goodbye: \(bye.message)", graceful: bye.code == Goodbye.normal)
            case .error(let error):
                if error.fatal {
                    state = .closed
                    return .close(reason: "peer error \(error.code): \(error.message)", graceful: false)
                }
                return .deliver(message)
            }
        }
    }

    /// The operator (or shutdown) asked this node to drain.
    public mutating func drain() {
        if case .established(let node, let version) = state { state = .draining(node: node, version: version) }
    }

    public mutating func close() { state = .closed }
}
