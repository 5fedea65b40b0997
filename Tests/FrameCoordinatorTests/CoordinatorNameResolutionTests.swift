import FrameCluster
import FrameCore
import Foundation
import FrameTestSupport
import NIOConcurrencyHelpers
import Testing
@testable import FrameCoordinator
@testable import FrameNode

/// A node given one coordinator name that resolves to several addresses tries each address,
/// and resolves the name again once they are exhausted; TLS verifies the name it was given.
/// The resolution is faked through the agent's resolver seam (never /etc/hosts). The coordinator
/// listens on 127.0.0.2 only: an address its certificate does not list (the test CA's lists
/// `localhost`, 127.0.0.1 and ::1), so a handshake there succeeds only by the name, and a node
/// dialling "localhost" by the system resolver (127.0.0.1) would find nobody.
@Suite(.serialized, .timeLimit(.minutes(2))) struct CoordinatorNameResolutionTests {
    /// Answers each resolution with the next list of `answers` (the last one from then on).
    final class ScriptedResolver: CoordinatorResolver {
        let answers: [[String]]
        let asked = NIOLockedValueBox<[String]>([])
        init(_ answers: [[String]]) { self.answers = answers }
        func addresses(of host: String) async throws -> [String] {
            let n = asked.withLockedValue { $0.append(host); return $0.count }
            return answers[min(n, answers.count) - 1]
        }
    }

    static func coordinator() async throws -> PipelineTests.Harness {
        try await PipelineTests.makeHarness(extra: ["coordinator.cluster_listen=127.0.0.2:0"])
    }

    static func agent(
        _ h: PipelineTests.Harness, node: String, name: String, resolver: ScriptedResolver
    ) throws -> Task<Void, any Error> {
        let tls = try h.cluster.nodeTLS(node)
        let config = try ClusterConfig.load(file: nil, environment: [:], overrides: [
            "node.coordinator=\(name):\(h.clusterPort)", "node.tls.ca=\(tls.ca.path)",
            "node.tls.cert=\(tls.certificate.path)", "node.tls.key=\(tls.key.path)", "node.slots=1",
        ]).validatedForNode()
        let agent = try NodeAgent(config: config, runner: IdleLeaseRunner(), softwareVersion: "t",
                                  logger: h.cluster.logger, resolver: resolver)
        return Task { try await agent.run() }
    }

    static func connected(_ h: PipelineTests.Harness, _ node: String) async -> Bool {
        await h.service.registry.liveNodes().map(\.name).contains(node)
    }

    @Test func theNodeTriesEachAddressOfTheNameAndReachesTheOneWithACoordinator() async throws {
        let h = try await Self.coordinator()
        defer { try? FileManager.default.removeItem(at: h.dir) }
        // 127.0.0.3 has no listener: refused, then the name's next address.
        let resolver = ScriptedResolver([["127.0.0.3", "127.0.0.2"]])
        let node = try Self.agent(h, node: "resolve-a", name: "localhost", resolver: resolver)
        defer { node.cancel() }
        try await TestCluster.eventually(timeout: .seconds(15), "the node connected through the name's second address") {
            await Self.connected(h, "resolve-a")
        }
        #expect(resolver.asked.withLockedValue { $0 } == ["localhost"], "one resolution served both dials")
        await h.stop()
    }

    @Test func anExhaustedListIsResolvedAgain() async throws {
        let h = try await Self.coordinator()
        defer { try? FileManager.default.removeItem(at: h.dir) }
        // First the name stands only for a dead address; resolved again, for the live one too.
        let resolver = ScriptedResolver([["127.0.0.3"], ["127.0.0.4", "127.0.0.2"]])
        let node = try Self.agent(h, node: "resolve-b", name: "localhost", resolver: resolver)
        defer { node.cancel() }
        try await TestCluster.eventually(timeout: .seconds(15), "the node connected after resolving again") {
            await Self.connected(h, "resolve-b")
        }
        #expect(resolver.asked.withLockedValue { $0 } == ["localhost", "localhost"])
        await h.stop()
    }

    @Test func aNameTheCertificateDoesNotCarryIsRefusedWhateverItResolvesTo() async throws {
        let h = try await Self.coordinator()
        defer { try? FileManager.default.removeItem(at: h.dir) }
        // The coordinator is there, but its certificate is not for this name: no session.
        let resolver = ScriptedResolver([["127.0.0.2"]])
        let node = try Self.agent(h, node: "resolve-c", name: "coordinators.invalid", resolver: resolver)
        defer { node.cancel() }
        try await TestCluster.eventually(timeout: .seconds(15), "the node dialled the resolved address twice") {
            resolver.asked.withLockedValue { $0.count } >= 2
        }
        #expect(await !Self.connected(h, "resolve-c"))
        await h.stop()
    }
}
