import FrameCluster
import FrameCore
import FrameWire
import Foundation
import Logging
import NIOCore
import Testing
@testable import FrameCoordinator
@testable import FrameNode

/// The node transport end to end in one process: mutual TLS, the handshake,
/// refusals, heartbeat loss and reconnection.
@Suite(.timeLimit(.minutes(3))) struct TransportTests {
    func errorCode(_ messages: [Message]) -> ErrorCode? {
        for m in messages { if case .error(let e) = m { return ErrorCode(rawValue: e.code) } }
        return nil
    }

    @Test func nodeWithIssuedCertificateIsWelcomed() async throws {
        let cluster = try TestCluster()
        let (listener, task) = try await cluster.startListener()
        defer { task.cancel() }
        let tls = try cluster.nodeTLS("node-a")
        let client = try await RawClient.connect(port: listener.port, ca: tls.ca, cert: tls.certificate, key: tls.key)
        let answers = try await client.exchange([RawClient.hello("node-a", max: ProtocolVersion.current)], timeout: .milliseconds(500))
        guard case .welcome(let w)? = answers.first else { Issue.record("no WELCOME: \(answers)"); return }
        #expect(w.version == ProtocolVersion.current)
        #expect(w.heartbeatIntervalMillis == 500)
        #expect(w.heartbeatTimeoutMillis == 5000)
    }

    @Test func clientWithoutCertificateIsRefused() async throws {
        let cluster = try TestCluster()
        let (listener, task) = try await cluster.startListener()
        defer { task.cancel() }
        let client = try await RawClient.connect(port: listener.port, ca: cluster.ca.caCertificateURL, cert: nil, key: nil)
        let answers = try? await client.exchange([RawClient.hello("node-a")])
        #expect(answers?.isEmpty ?? true)
        #expect(await cluster.registry.liveNodes().isEmpty)
    }

    @Test func certificateFromAnotherCAIsRefused() async throws {
        let cluster = try TestCluster()
        let other = try TestCluster()
        let (listener, task) = try await cluster.startListener()
        defer { task.cancel() }
        let foreign = try other.nodeTLS("node-a")
        // Trust the real coordinator so only the server side can refuse.
        let client = try await RawClient.connect(
            port: listener.port, ca: cluster.ca.caCertificateURL, cert: foreign.certificate, key: foreign.key)
        let answers = try? await client.exchange([RawClient.hello("node-a")])
        #expect(answers?.isEmpty ?? true)
        #expect(await cluster.registry.liveNodes().isEmpty)
    }

    @Test func expiredCertificateIsRefused() async throws {
        let cluster = try TestCluster()
        let (listener, task) = try await cluster.startListener()
        defer { task.cancel() }
        let expired = try cluster.nodeTLS(
            "node-old", notValidAfter: Date().addingTimeInterval(-3600), notValidBefore: Date().addingTimeInterval(-86_400))
        let client = try await RawClient.connect(port: listener.port, ca: expired.ca, cert: expired.certificate, key: expired.key)
        let answers = try? await client.exchange([RawClient.hello("node-old")])
        #expect(answers?.isEmpty ?? true)
        #expect(await cluster.registry.liveNodes().isEmpty)
    }

    @Test func revokedNodeGetsAnErrorFrame() async throws {
        let cluster = try TestCluster()
        let (listener, task) = try await cluster.startListener()
        defer { task.cancel() }
        try await cluster.registry.revoke("node-r")
        let tls = try cluster.nodeTLS("node-r")
        let client = try await RawClient.connect(port: listener.port, ca: tls.ca, cert: tls.certificate, key: tls.key)
        let answers = try await client.exchange([RawClient.hello("node-r")])
        #expect(errorCode(answers) == .nodeRevoked)
    }

    @Test func incompatibleVersionGetsAnErrorFrameAndClose() async throws {
        let cluster = try TestCluster()
        let (listener, task) = try await cluster.startListener()
        defer { task.cancel() }
        let tls = try cluster.nodeTLS("node-v")
        let client = try await RawClient.connect(port: listener.port, ca: tls.ca, cert: tls.certificate, key: tls.key)
        let answers = try await client.exchange([RawClient.hello("node-v", min: 50, max: 60)])
        #expect(answers.count == 1)
        #expect(errorCode(answers) == .unsupportedVersion)
    }

    @Test func helloNameMustMatchCertificate() async throws {
        let cluster = try TestCluster()
        let (listener, task) = try await cluster.startListener()
        defer { task.cancel() }
        let tls = try cluster.nodeTLS("node-x")
        let client = try await RawClient.connect(port: listener.port, ca: tls.ca, cert: tls.certificate, key: tls.key)
        let answers = try await client.exchange([RawClient.hello("node-y")])
        #expect(errorCode(answers) == .identityMismatch)
    }

    @Test func silentNodeIsDeclaredLost() async throws {
        let cluster = try TestCluster(heartbeatInterval: .milliseconds(200), heartbeatTimeout: .milliseconds(800))
        let (listener, task) = try await cluster.startListener()
        defer { task.cancel() }
        let tls = try cluster.nodeTLS("node-s")
        let client = try await RawClient.connect(port: listener.port, ca: tls.ca, cert: tls.certificate, key: tls.key)
        let start = ContinuousClock.now
        // HELLO, then silence: the coordinator must give up after the heartbeat timeout.
        let answers = try await client.exchange([RawClient.hello("node-s")], timeout: .seconds(5))
        let elapsed = ContinuousClock.now - start
        guard case .welcome? = answers.first else { Issue.record("no WELCOME: \(answers)"); return }
        #expect(errorCode(answers) == .heartbeatTimeout)
        #expect(elapsed < .milliseconds(800 + 1000))
        try await TestCluster.eventually("node offline") { await cluster.registry.liveNodes().isEmpty }
    }

    @Test func agentConnectsHeartbeatsAndSurvivesCoordinatorRestart() async throws {
        let cluster = try TestCluster(heartbeatInterval: .milliseconds(300), heartbeatTimeout: .seconds(2))
        var (listener, task) = try await cluster.startListener()
        let port = listener.port
        let tls = try cluster.nodeTLS("node-agent")
        let config = try ClusterConfig.load(file: nil, environment: [:], overrides: [
            "node.coordinator=127.0.0.1:\(port)", "node.tls.ca=\(tls.ca.path)",
            "node.tls.cert=\(tls.certificate.path)", "node.tls.key=\(tls.key.path)",
            "node.slots=2", "node.labels=zone=a", "node.reconnect_max_backoff=500ms",
        ]).validatedForNode()
        let agent = try NodeAgent(config: config, runner: IdleLeaseRunner(), softwareVersion: "t", logger: cluster.logger)
        let agentTask = Task { try await agent.run() }
        defer { agentTask.cancel() }

        try await TestCluster.eventually("agent online") { await cluster.registry.isLive("node-agent") }
        // Heartbeats keep it alive well past the timeout.
        try await Task.sleep(for: .seconds(4))
        #expect(await cluster.registry.isLive("node-agent"))
        let status = try await cluster.registry.statuses().first { $0.name == "node-agent" }
        #expect(status?.slots == 2)
        #expect(status?.labels == ["zone": "a"])
        #expect(status?.state == "online")

        // The coordinator goes away...
        task.cancel()
        _ = try? await task.value
        try await TestCluster.eventually("agent offline") { await !cluster.registry.isLive("node-agent") }
        // ...and comes back on the same port: the agent reconnects by itself.
        (listener, task) = try await cluster.startListener(port: port)
        defer { task.cancel() }
        try await TestCluster.eventually("agent reconnected") { await cluster.registry.isLive("node-agent") }
    }

    @Test func revokingALiveNodeDisconnectsAndStopsIt() async throws {
        let cluster = try TestCluster()
        let (listener, task) = try await cluster.startListener()
        defer { task.cancel() }
        let tls = try cluster.nodeTLS("node-rv")
        let config = try ClusterConfig.load(file: nil, environment: [:], overrides: [
            "node.coordinator=127.0.0.1:\(listener.port)", "node.tls.ca=\(tls.ca.path)",
            "node.tls.cert=\(tls.certificate.path)", "node.tls.key=\(tls.key.path)",
            "node.reconnect_max_backoff=200ms",
        ]).validatedForNode()
        let agent = try NodeAgent(config: config, runner: IdleLeaseRunner(), softwareVersion: "t", logger: cluster.logger)
        let agentTask = Task { try await agent.run() }
        try await TestCluster.eventually("agent online") { await cluster.registry.isLive("node-rv") }
        try await cluster.registry.revoke("node-rv")
        let result = await agentTask.result
        guard case .failure(let error as NodeAgent.Stopped) = result else {
            Issue.record("agent should stop with NODE_REVOKED, got \(result)"); return
        }
        #expect(error.code == .nodeRevoked)
        #expect(try await cluster.registry.statuses().first { $0.name == "node-rv" }?.state == "revoked")
    }
}
