import FrameCluster
import FrameCore
import FrameSession
import FrameWire
import Foundation
import Logging
import Synchronization
import NIOCore

/// One node's connection, from the first frame to the close.
///
/// Drives ``NodeSessionStateMachine`` with the inbound messages, performs the
/// actions it returns, and keeps the ``NodeRegistry`` and the
/// ``NodeWorkHandler`` informed. Heartbeats, both ways, are the pipeline's
/// ``HeartbeatBeacon`` once WELCOME is out; read-idle detection (heartbeat
/// loss) is its clock's with the pipeline's `ReadIdleCloser`, which ends the
/// inbound stream with ``TransportError/heartbeatTimeout``.
struct NodeSession {
    let connection: FrameChannel.Async
    let registry: NodeRegistry
    let work: (any NodeWorkHandler)?
    let settings: SessionSettings
    let logger: Logger

    func run() async {
        let channel = connection.channel
        let address = channel.remoteAddress?.description ?? "unknown"
        var logger = self.logger
        logger[metadataKey: "peer"] = "\(address)"
        let sessionID = await registry.makeSessionID()
        var nodeName: String?
        var endReason = "connection closed"
        // Whether the connection merely dropped (EOF/reset, no GOODBYE, not
        // closed by us, no heartbeat timeout): then the node may resume.
        var mayResume = true
        // Whether it ended with a normal GOODBYE (the node left on purpose).
        var graceful = false
        let closedByUs = ClosedByUs()
        // Cleanup runs inside executeThenClose, before the TLS shutdown: closing
        // waits for the peer's close_notify, which a stopped node never sends.
        let cleanup: @Sendable (String?, String, Bool, Bool) async -> Void = { [registry, work, logger] name, reason, resume, graceful in
            guard let name else { return }
            // A node that said a normal GOODBYE left on purpose (it drained first): not a warning.
            logger.log(level: graceful ? .notice : .warning, "node disconnected",
                       metadata: ["reason": "\(reason)", "may_resume": "\(resume)"])
            await registry.detach(name: name, sessionID: sessionID)
            await work?.nodeLeft(name: name, session: sessionID, reason: reason, mayResume: resume)
        }
        try? await connection.executeThenClose { inbound, outbound in
          do {
                var iterator = inbound.makeAsyncIterator()
                // The first frame arrives only after the TLS handshake, so the
                // peer certificate is available from here on.
                guard let first = try await iterator.next() else { return }
                guard let certName = try await PeerIdentity.commonName(of: channel) else {
                    await Self.reject(outbound, channel, .identityMismatch, "certificate has no common name")
                    return
                }
                logger[metadataKey: "node"] = "\(certName)"
                var machine = NodeSessionStateMachine(
                    certificateName: certName, isRevoked: await registry.isRevoked(certName))
                let send: @Sendable (Message) async -> Void = { message in
                    try? await outbound.write(message)
                }
                let close: @Sendable (ErrorCode?, String) async -> Void = { code, text in
                    closedByUs.flag.store(true, ordering: .relaxed)
                    if let code {
                        if code == .duplicateSession {
                            try? await outbound.write(.goodbye(Goodbye(code: code.rawValue, message: text)))
                        } else {
                            try? await outbound.write(.error(ErrorMessage(code: code.rawValue, fatal: true, message: text, lease: nil)))
                        }
                    }
                    channel.close(mode: .all, promise: nil)
                }

                do {
                    var pending: Message? = first
                    receiving: while true {
                        let message: Message
                        if let p = pending { message = p; pending = nil } else {
                            guard let next = try await iterator.next() else { break }
                            message = next
                        }
                        switch machine.receive(message) {
                        case .acceptHello(let hello, let version):
                            nodeName = hello.nodeName
                            let live = NodeRegistry.LiveNode(
                                sessionID: sessionID, name: hello.nodeName, slots: Int(hello.slots),
                                labels: Dictionary(hello.labels.map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last }),
                                softwareVersion: hello.softwareVersion, address: address, connectedAt: Date(),
                                lastFrameAt: Date(), lastHeartbeat: nil, draining: false, send: send, close: close)
                            let resumed = await work?.nodeJoined(
                                name: hello.nodeName, session: sessionID, slots: Int(hello.slots), labels: live.labels,
                                heldLeases: hello.heldLeases, protocolVersion: version, send: send) ?? []
                            try await outbound.write(.welcome(Welcome(
                                version: version, coordinatorID: settings.coordinatorID,
                                heartbeatIntervalMillis: UInt32(settings.heartbeatInterval.milliseconds),
                                heartbeatTimeoutMillis: UInt32(settings.heartbeatTimeout.milliseconds),
                                resumedLeases: resumed)))
                            await registry.attach(live)
                            logger.info("node connected", metadata: [
                                "slots": "\(hello.slots)", "version": "\(hello.softwareVersion)",
                                "protocol": "\(version)",
                            ])
                            // Only now, with WELCOME written and the node registered, may it get a LEASE.
                            await work?.nodeReady(name: hello.nodeName, session: sessionID)
                            // Heartbeats both ways now stay on the channel's event loop (HeartbeatBeacon):
                            // ours are sent from its loop's clock, and the node's are noted there, checked
                            // by the same rule the state machine applies; one that fails it comes on to
                            // the machine, which refuses it.
                            let name = hello.nodeName
                            // Frames, and a session this side is not reading, renew the node's leases too.
                            try await channel.triggerUserOutboundEvent(HeartbeatBeacon.Start(onHeartbeat: { [registry, work] hb in
                                guard case .accept = NodeMessageRules.check(.heartbeat(hb)) else { return false }
                                registry.recordHeartbeat(name: name, sessionID: sessionID, hb)
                                work?.heartbeat(from: name)
                                return true
                            }, onAlive: { [work] in work?.stillWorking(name) }))
                        case .reject(let code, let text):
                            logger.warning("node rejected", metadata: ["code": "\(code.name)", "reason": "\(text)"])
                            endReason = "rejected: \(code.name)"
                            mayResume = false
                            await Self.reject(outbound, channel, code, text)
                            break receiving
                        case .heartbeat(let hb):
                            // Only those before the beacon took over (above). Both only note the
                            // heartbeat in memory: the database writes are batched
                            // (NodeRegistry.flushHeartbeats, LeaseScheduler's renewals), so a
                            // database outage never stalls this reader into a heartbeat timeout.
                            if let name = nodeName {
                                registry.recordHeartbeat(name: name, sessionID: sessionID, hb)
                                work?.heartbeat(from: name)
                            }
                        case .deliver(let m):
                            if let name = nodeName {
                                registry.recordFrame(name: name, sessionID: sessionID)
                                await work?.receive(m, from: name)
                            }
                        case .startDraining(let reason):
                            if let name = nodeName {
                                logger.notice("node is draining", metadata: ["reason": "\(reason)"])
                                await registry.setDraining(name: name, sessionID: sessionID)
                                await work?.nodeDraining(name: name)
                            }
                        case .close(let reason, let isGraceful):
                            endReason = reason
                            graceful = isGraceful
                            mayResume = false
                            break receiving
                        case .ignore:
                            break
                        }
                    }
                }
          } catch TransportError.heartbeatTimeout {
              endReason = "heartbeat timeout"
              mayResume = false
          } catch {
              endReason = "connection error: \(error)"
          }
          if closedByUs.flag.load(ordering: .relaxed) { mayResume = false }
          await cleanup(nodeName, endReason, mayResume, graceful)
        }
    }

    /// Sends a fatal ERROR and closes; used for every handshake refusal.
    static func reject(
        _ outbound: NIOAsyncChannelOutboundWriter<Message>, _ channel: any Channel, _ code: ErrorCode, _ text: String
    ) async {
        try? await outbound.write(.error(ErrorMessage(code: code.rawValue, fatal: true, message: text, lease: nil)))
        try? await channel.close(mode: .all)
    }
}

/// Set when this side closed the session (revoked, replaced, shutting down): then it may not resume.
private final class ClosedByUs: Sendable {
    let flag = Atomic<Bool>(false)
}
