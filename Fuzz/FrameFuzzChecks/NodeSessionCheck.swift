import FrameCore
import FrameSession
import FrameWire
import Foundation
import NIOCore

/// The coordinator's session rules (proto-spec/handshake.md), checked on an arbitrary stream of frames from a node.
///
/// Input: one control byte, then the bytes a node sends once TLS is up. Control byte: bit 0, the operator has
/// revoked the node; bits 1-2, an operator event (0 none, 1 drain, 2 close, 3 drain) applied before the frame whose
/// index is in bits 3-7. The frames are decoded with the real codec and fed to ``NodeSessionStateMachine`` for the
/// certificate name ``certificateName``; a decoding error closes the session, as the driver does. Every frame is fed,
/// also after the session closed (which the driver never does), and a few valid ones after the input ends, so that
/// "closed stays closed" is tested on every input. Each step is checked against the rules written out below: the
/// action must be the one allowed for that message in that state (no `.deliver` or `.heartbeat` before the
/// handshake, no `.acceptHello` after it), states only move forward, and `nodeName` and `acceptsLeases` follow the
/// state.
public enum NodeSessionCheck {
    /// The name in proto-spec/vectors/hello.hex, so the seed HELLO passes the identity check.
    public static let certificateName = "node-a"

    public static func check(_ input: [UInt8]) throws(FuzzViolation) {
        guard let control = input.first else { return }
        let revoked = control & 1 != 0
        let event = (control >> 1) & 3
        let eventIndex = Int(control >> 3)
        var session = Checked(machine: NodeSessionStateMachine(certificateName: certificateName, isRevoked: revoked))
        var buffer = ByteBuffer(bytes: input.dropFirst())
        var index = 0
        while true {
            if index == eventIndex { try session.operatorEvent(event) }
            let message: Message
            do {
                guard let next = try FrameCodec.decodeFrame(from: &buffer, maxFrameLength: FrameCodec.defaultMaxFrameLength)
                else { break }
                message = next
            } catch {
                // The session answers a bad frame with a fatal ERROR and closes.
                try session.operatorEvent(2)
                break
            }
            try session.receive(message)
            index += 1
        }
        if session.machine.state == .closed {
            for probe in probes { try session.receive(probe) }
        }
    }

    /// Valid messages of every kind a node sends, fed after a session closed.
    static let probes: [Message] = {
        let lease = LeaseRef(jobID: .init(uuid: (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)), segment: 1, epoch: 1)
        return [
            .hello(Hello(nodeName: certificateName, softwareVersion: "probe", slots: 1)),
            .heartbeat(Heartbeat(sequence: 1)),
            .read(Read(requestID: 1, lease: lease, offset: 0, length: 1)),
            .segmentDone(SegmentDone(lease: lease, frameCount: 0, decodedFrames: 0, bytesRead: 0, elapsedMillis: 0)),
            .drain(Drain(reason: "probe")),
            .error(ErrorMessage(code: .staleEpoch, fatal: false, message: "probe", lease: lease)),
        ]
    }()

    /// The machine with the checks around each call.
    struct Checked {
        var machine: NodeSessionStateMachine

        mutating func operatorEvent(_ event: UInt8) throws(FuzzViolation) {
            let before = machine.state
            switch event {
            case 1, 3:
                machine.drain()
                if case .established(let node, let version) = before {
                    try require(machine.state == .draining(node: node, version: version), "drain() from \(before) gave \(machine.state)")
                } else {
                    try require(machine.state == before, "drain() in \(before) moved to \(machine.state)")
                }
            case 2:
                machine.close()
                try require(machine.state == .closed, "close() left \(machine.state)")
            default:
                return
            }
            try checkDerived()
        }

        mutating func receive(_ message: Message) throws(FuzzViolation) {
            let before = machine.state
            let action = machine.receive(message)
            let after = machine.state
            let expected = try Self.expected(message, in: before, certificateName: machine.certificateName,
                                         revoked: machine.isRevoked)
            try require(Self.matches(action, expected.action) && after == expected.state,
                        "\(message.type.name) in \(before): got \(action) -> \(after), expected \(expected.action) -> \(expected.state)")
            try require(Self.rank(after) >= Self.rank(before), "moved back from \(before) to \(after)")
            try checkDerived()
        }

        func checkDerived() throws(FuzzViolation) {
            switch machine.state {
            case .established(let node, _):
                try require(machine.nodeName == node && machine.acceptsLeases, "established but \(String(describing: machine.nodeName)), leases \(machine.acceptsLeases)")
            case .draining(let node, _):
                try require(machine.nodeName == node && !machine.acceptsLeases, "draining but \(String(describing: machine.nodeName)), leases \(machine.acceptsLeases)")
            case .awaitingHello, .closed:
                try require(machine.nodeName == nil && !machine.acceptsLeases, "\(machine.state) but \(String(describing: machine.nodeName)), leases \(machine.acceptsLeases)")
            }
        }

        static func rank(_ state: NodeSessionStateMachine.State) -> Int {
            switch state {
            case .awaitingHello: 0
            case .established: 1
            case .draining: 2
            case .closed: 3
            }
        }

        /// The allowed answer, with a reject's code (its text is free).
        enum Expected {
            case exactly(NodeSessionStateMachine.Action)
            case reject(ErrorCode)
            case close
        }

        /// The rules of proto-spec/handshake.md, written out independently of the machine.
        static func expected(
            _ message: Message, in state: NodeSessionStateMachine.State, certificateName: String, revoked: Bool
        ) throws(FuzzViolation) -> (action: Expected, state: NodeSessionStateMachine.State) {
            switch state {
            case .closed:
                return (.exactly(.ignore), .closed)
            case .awaitingHello:
                guard case .hello(let hello) = message else { return (.reject(.unexpectedMessage), .closed) }
                guard let version = ProtocolVersion.negotiate(min: hello.minVersion, max: hello.maxVersion) else {
                    return (.reject(.unsupportedVersion), .closed)
                }
                guard hello.nodeName == certificateName else { return (.reject(.identityMismatch), .closed) }
                guard !revoked else { return (.reject(.nodeRevoked), .closed) }
                guard case .accept = try fieldVerdict(message) else { return (.reject(.invalidField), .closed) }
                return (.exactly(.acceptHello(hello, version: version)), .established(node: hello.nodeName, version: version))
            case .established(let node, let version), .draining(let node, let version):
                // Fields first (handshake.md, "HELLO fields"; messages.md): nothing downstream sees a refused value,
                // and what is used is the normalised message.
                guard case .accept(let message) = try fieldVerdict(message) else { return (.reject(.invalidField), .closed) }
                // A type the session's version does not have is unknown (framing.md): LEASE_URL came with version 2.
                if message.type == .leaseURL && version < 2 { return (.reject(.unknownMessageType), .closed) }
                // Only the coordinator sends these, and HELLO only opens a session.
                if message.type == .hello || message.type.direction == .coordinatorToNode {
                    return (.reject(.unexpectedMessage), .closed)
                }
                switch message {
                case .heartbeat(let heartbeat):
                    return (.exactly(.heartbeat(heartbeat)), state)
                case .read, .frame, .segmentDone, .segmentFailed:
                    return (.exactly(.deliver(message)), state)
                case .error(let error):
                    return error.fatal ? (.close, .closed) : (.exactly(.deliver(message)), state)
                case .drain(let drain):
                    return (.exactly(.startDraining(reason: drain.reason)), .draining(node: node, version: version))
                case .goodbye:
                    return (.close, .closed)
                case .hello, .welcome, .lease, .leaseURL, .readData, .cancel:
                    return (.reject(.unexpectedMessage), .closed)  // handled above
                }
            }
        }

        /// The field layer of the rules. Which values are allowed is `NodeMessageRules`' to say (and
        /// `NodeMessageRulesTests`' to pin, value by value); here the verdict is only checked against the
        /// bounds the rest of the coordinator relies on, so that a rule loosened by mistake breaks the fuzzer too.
        static func fieldVerdict(_ message: Message) throws(FuzzViolation) -> NodeMessageRules.Verdict {
            let verdict = NodeMessageRules.check(message)
            guard case .accept(let accepted) = verdict else { return verdict }
            switch accepted {
            case .hello(let hello):
                try require((1...1024).contains(hello.slots) && hello.heldLeases.count <= 1024,
                             "NodeMessageRules accepted HELLO slots \(hello.slots), \(hello.heldLeases.count) held leases")
            case .heartbeat(let heartbeat):
                try require(heartbeat.framesTotal <= UInt64(Int64.max), "NodeMessageRules accepted framesTotal \(heartbeat.framesTotal)")
            case .segmentFailed(let failed):
                try require(failed.message.count <= NodeMessageRules.maxFreeTextCharacters, "SEGMENT_FAILED text not cut")
            case .drain(let drain):
                try require(drain.reason.count <= NodeMessageRules.maxFreeTextCharacters, "DRAIN reason not cut")
            case .goodbye(let bye):
                try require(bye.message.count <= NodeMessageRules.maxFreeTextCharacters, "GOODBYE text not cut")
            case .error(let error):
                try require(error.message.count <= NodeMessageRules.maxFreeTextCharacters, "ERROR text not cut")
            default:
                break
            }
            return verdict
        }

        static func matches(_ action: NodeSessionStateMachine.Action, _ expected: Expected) -> Bool {
            switch (action, expected) {
            case (.reject(let code, _), .reject(let want)): code == want
            case (.close, .close): true
            // FRAME carries a Double (NaN != NaN): compare what is delivered by its encoding.
            case (.deliver(let got), .exactly(.deliver(let want))): encoded(got) == encoded(want)
            case (_, .exactly(let want)): action == want
            default: false
            }
        }

        static func encoded(_ message: Message) -> [UInt8] { Array(FrameCodec.encode(message).readableBytesView) }
    }
}
