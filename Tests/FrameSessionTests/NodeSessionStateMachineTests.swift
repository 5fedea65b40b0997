import FrameCore
import FrameWire
import Foundation
import Testing
@testable import FrameSession

@Suite struct NodeSessionStateMachineTests {
    func hello(_ name: String = "n1", min: UInt16 = 1, max: UInt16 = 1) -> Message {
        .hello(Hello(minVersion: min, maxVersion: max, nodeName: name, softwareVersion: "t", slots: 2, labels: [], heldLeases: []))
    }
    let ref = LeaseRef(jobID: UUID(), segment: 0, epoch: 1)

    @Test func helloEstablishes() {
        var m = NodeSessionStateMachine(certificateName: "n1")
        guard case .acceptHello(_, let version) = m.receive(hello()) else { Issue.record("not accepted"); return }
        #expect(version == 1)
        #expect(m.state == .established(node: "n1", version: 1))
        #expect(m.acceptsLeases)
    }

    static func leaseURL(_ ref: LeaseRef) -> Message {
        .leaseURL(LeaseURL(
            lease: Lease(lease: ref, leaseTTLMillis: 1000, sourceSize: 1,
                         formatHint: "", segment: SegmentSpec(index: ref.segment, streamIndex: 0, timeBase: Rational(1, 1),
                                                              decodeStartPTS: 0, startPTS: 0, endPTS: 1, firstSample: 0,
                                                              sampleCount: 1, rate: Rational(1, 1), originMicros: 0, keyframes: []),
                         options: OutputOptions()),
            sourceURL: "http://s/o", expiresAtMillis: 1))
    }

    @Test func aVersion2NodeGetsVersion2() {
        var m = NodeSessionStateMachine(certificateName: "n1")
        guard case .acceptHello(_, let version) = m.receive(hello(max: 2)) else { Issue.record("not accepted"); return }
        #expect(version == 2)
    }

    @Test func aTypeNewerThanTheSessionIsUnknownAndOnV2WrongDirection() {
        // On a version-1 session LEASE_URL does not exist; on version 2 it exists but only a coordinator sends it.
        var v1 = NodeSessionStateMachine(certificateName: "n1")
        _ = v1.receive(hello())
        guard case .reject(.unknownMessageType, _) = v1.receive(Self.leaseURL(ref)) else { Issue.record("expected UNKNOWN_MESSAGE_TYPE"); return }
        #expect(v1.state == .closed)
        var v2 = NodeSessionStateMachine(certificateName: "n1")
        _ = v2.receive(hello(max: 2))
        guard case .reject(.unexpectedMessage, _) = v2.receive(Self.leaseURL(ref)) else { Issue.record("expected UNEXPECTED_MESSAGE"); return }
    }

    @Test func anythingBeforeHelloIsRejected() {
        var m = NodeSessionStateMachine(certificateName: "n1")
        guard case .reject(.unexpectedMessage, _) = m.receive(.heartbeat(Heartbeat(sequence: 1, activeLeases: 0, framesTotal: 0))) else {
            Issue.record("expected rejection"); return
        }
        #expect(m.state == .closed)
    }

    @Test func incompatibleVersionIsRejected() {
        var m = NodeSessionStateMachine(certificateName: "n1")
        guard case .reject(.unsupportedVersion, _) = m.receive(hello(min: 7, max: 9)) else {
            Issue.record("expected rejection"); return
        }
    }

    @Test func nameMustMatchCertificate() {
        var m = NodeSessionStateMachine(certificateName: "n1")
        guard case .reject(.identityMismatch, _) = m.receive(hello("n2")) else { Issue.record("expected rejection"); return }
    }

    @Test func revokedNodeIsRejected() {
        var m = NodeSessionStateMachine(certificateName: "n1", isRevoked: true)
        guard case .reject(.nodeRevoked, _) = m.receive(hello()) else { Issue.record("expected rejection"); return }
    }

    @Test func establishedRoutesMessages() {
        var m = NodeSessionStateMachine(certificateName: "n1")
        _ = m.receive(hello())
        let hb = Heartbeat(sequence: 3, activeLeases: 1, framesTotal: 9)
        #expect(m.receive(.heartbeat(hb)) == .heartbeat(hb))
        let done = Message.segmentDone(SegmentDone(lease: ref, frameCount: 1, decodedFrames: 2, bytesRead: 3, elapsedMillis: 4))
        #expect(m.receive(done) == .deliver(done))
        #expect(m.receive(.drain(Drain(reason: "bye"))) == .startDraining(reason: "bye"))
        #expect(!m.acceptsLeases)
        #expect(m.receive(done) == .deliver(done))
        #expect(m.receive(.goodbye(Goodbye(code: 0, message: "x"))) == .close(reason: "goodbye: x", graceful: true))
        #expect(m.state == .closed)
    }

    /// Only a GOODBYE with the normal code is a node leaving on purpose (logged as a notice, not a warning).
    @Test func aGoodbyeWithAnErrorCodeOrAFatalErrorIsNotGraceful() {
        var m = NodeSessionStateMachine(certificateName: "n1")
        _ = m.receive(hello())
        #expect(m.receive(.goodbye(Goodbye(code: .shuttingDown, message: "y"))) == .close(reason: "goodbye: y", graceful: false))
        var n = NodeSessionStateMachine(certificateName: "n1")
        _ = n.receive(hello())
        guard case .close(_, graceful: false) = n.receive(.error(ErrorMessage(code: 1, fatal: true, message: "z", lease: nil))) else {
            Issue.record("expected a close that is not graceful"); return
        }
    }

    @Test func coordinatorMessagesFromANodeAreViolations() {
        var m = NodeSessionStateMachine(certificateName: "n1")
        _ = m.receive(hello())
        guard case .reject(.unexpectedMessage, _) = m.receive(.cancel(Cancel(lease: ref, reason: 0))) else {
            Issue.record("expected rejection"); return
        }
    }

    @Test func secondHelloIsAViolation() {
        var m = NodeSessionStateMachine(certificateName: "n1")
        _ = m.receive(hello())
        guard case .reject(.unexpectedMessage, _) = m.receive(hello()) else { Issue.record("expected rejection"); return }
    }
}
