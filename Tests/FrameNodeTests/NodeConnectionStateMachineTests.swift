import FrameCore
import FrameWire
import Foundation
import Testing
@testable import FrameNode

@Suite struct NodeConnectionStateMachineTests {
    let welcome = Welcome(version: 1, coordinatorID: "c", heartbeatIntervalMillis: 1000, heartbeatTimeoutMillis: 3000, resumedLeases: [])

    @Test func welcomeEstablishes() {
        var m = NodeConnectionStateMachine()
        #expect(m.receive(.welcome(welcome)) == .established(welcome))
        #expect(m.state == .established(version: 1))
    }

    static let leaseURL = Message.leaseURL(LeaseURL(
        lease: Lease(lease: LeaseRef(jobID: UUID(), segment: 0, epoch: 1), leaseTTLMillis: 1000, sourceSize: 1, formatHint: "",
                     segment: SegmentSpec(index: 0, streamIndex: 0, timeBase: Rational(1, 1), decodeStartPTS: 0, startPTS: 0,
                                          endPTS: 1, firstSample: 0, sampleCount: 1, rate: Rational(1, 1), originMicros: 0,
                                          keyframes: []),
                     options: OutputOptions()),
        sourceURL: "http://s/o", expiresAtMillis: 1))

    @Test func leaseURLIsWorkOnVersion2AndUnknownOnVersion1() {
        var v2 = NodeConnectionStateMachine()
        var w2 = welcome
        w2.version = 2
        _ = v2.receive(.welcome(w2))
        #expect(v2.receive(Self.leaseURL) == .deliver(Self.leaseURL))
        var v1 = NodeConnectionStateMachine()
        _ = v1.receive(.welcome(welcome))
        guard case .violation(.unknownMessageType, _) = v1.receive(Self.leaseURL) else { Issue.record("expected UNKNOWN_MESSAGE_TYPE"); return }
        #expect(v1.state == .closed)
    }

    @Test func aWelcomeOutsideTheAnnouncedVersionsIsRefused() {
        // A node with direct reads off announces 1...1: a coordinator that picks 2 broke the rule.
        var m = NodeConnectionStateMachine(versions: 1...1)
        var w2 = welcome
        w2.version = 2
        guard case .violation(.unsupportedVersion, _) = m.receive(.welcome(w2)) else { Issue.record("expected UNSUPPORTED_VERSION"); return }
    }

    @Test func revokedStopsForGood() {
        var m = NodeConnectionStateMachine()
        let e = ErrorMessage(code: ErrorCode.nodeRevoked.rawValue, fatal: true, message: "no", lease: nil)
        guard case .end(.stop(.nodeRevoked, _)) = m.receive(.error(e)) else { Issue.record("expected stop"); return }
    }

    @Test func heartbeatTimeoutErrorReconnects() {
        var m = NodeConnectionStateMachine()
        _ = m.receive(.welcome(welcome))
        let e = ErrorMessage(code: ErrorCode.heartbeatTimeout.rawValue, fatal: true, message: "late", lease: nil)
        guard case .end(.reconnect) = m.receive(.error(e)) else { Issue.record("expected reconnect"); return }
    }

    @Test func nodeMessagesFromTheCoordinatorAreViolations() {
        var m = NodeConnectionStateMachine()
        _ = m.receive(.welcome(welcome))
        let hb = Heartbeat(sequence: 1, activeLeases: 0, framesTotal: 0)
        #expect(m.receive(.heartbeat(hb)) == .alive)
        guard case .violation(.unexpectedMessage, _) = m.receive(.read(Read(
            requestID: 1, lease: LeaseRef(jobID: UUID(), segment: 0, epoch: 1), offset: 0, length: 1))) else {
            Issue.record("expected violation"); return
        }
    }

    @Test func anythingButWelcomeFirstIsAViolation() {
        var m = NodeConnectionStateMachine()
        guard case .violation = m.receive(.heartbeat(Heartbeat(sequence: 1, activeLeases: 0, framesTotal: 0))) else {
            Issue.record("expected violation"); return
        }
    }

    @Test func drainThenGoodbye() {
        var m = NodeConnectionStateMachine()
        _ = m.receive(.welcome(welcome))
        #expect(m.receive(.drain(Drain(reason: "op"))) == .drain("op"))
        #expect(m.state == .draining(version: 1))
        guard case .end(.reconnect) = m.receive(.goodbye(Goodbye(code: 0, message: "bye"))) else {
            Issue.record("expected reconnect"); return
        }
    }
}
