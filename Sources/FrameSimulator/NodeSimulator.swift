import FrameCluster
import FrameCore
import FrameNode
import Foundation
import Logging
import Synchronization
import ServiceLifecycle

/// What every simulated node did, summed (printed by `frameflow-sim`).
public final class SimulatorCounters: Sendable {
    public struct Snapshot: Sendable, Equatable {
        public var connected = 0
        public var leases = 0
        public var frames = 0
        public var frameBytes = 0
        public var done = 0
        public var failed = 0
        public var disconnects = 0
    }

    private let box = Mutex(Snapshot())

    public init() {}

    public var snapshot: Snapshot { box.withLock { $0 } }
    func connected(_ delta: Int) { box.withLock { $0.connected += delta } }
    func leased() { box.withLock { $0.leases += 1 } }
    func frame(bytes: Int) { box.withLock { $0.frames += 1; $0.frameBytes += bytes } }
    func done() { box.withLock { $0.done += 1 } }
    func failed() { box.withLock { $0.failed += 1 } }
    func disconnected() { box.withLock { $0.disconnects += 1 } }
}

/// N simulated nodes in one process, each a real ``NodeAgent`` (its own
/// certificate, mutual-TLS session, HELLO, heartbeats, reconnects) with a
/// ``SimulatedLeaseRunner`` in place of FFmpeg: a load generator for the
/// coordinator (`frameflow-sim`, `scripts/loadtest --simulate N`).
///
/// Certificates: one per node (`<prefix>-<i>`), issued by the cluster CA in
/// `certificates` (the CA's directory) on first use and reused after.
public struct NodeSimulator: Service {
    public var base: NodeConfig
    public var nodes: Int
    public var prefix: String
    public var model: DecodeModel
    /// Sessions opened per second at start (a thousand TLS handshakes at once would measure only the handshakes).
    public var connectsPerSecond: Double
    public let counters: SimulatorCounters
    let authority: CertificateAuthority
    let logger: Logger

    public init(
        base: NodeConfig, certificates: URL, nodes: Int, prefix: String = "sim", model: DecodeModel,
        connectsPerSecond: Double = 200, counters: SimulatorCounters = SimulatorCounters(), logger: Logger
    ) {
        self.base = base
        self.nodes = nodes
        self.prefix = prefix
        self.model = model
        self.connectsPerSecond = connectsPerSecond
        self.counters = counters
        self.authority = CertificateAuthority(directory: certificates)
        self.logger = logger
    }

    /// Issues (or finds) every node's certificate; returns each node's settings.
    public func prepare() throws -> [NodeConfig] {
        try (1...max(1, nodes)).map { i in
            let name = "\(prefix)-\(i)"
            let files = authority.files(for: name)
            if !FileManager.default.fileExists(atPath: files.key.path) {
                try authority.issueNode(name: name)
            }
            var config = base
            config.name = name
            config.tls = TLSFiles(ca: base.tls.ca, certificate: files.certificate, key: files.key)
            return config
        }
    }

    public func run() async throws {
        let configs = try prepare()
        logger.notice("simulated nodes ready", metadata: ["nodes": "\(configs.count)"])
        let pace = connectsPerSecond > 0 ? Duration.seconds(1 / connectsPerSecond) : .zero
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                for config in configs {
                    group.addTask { await self.runNode(config) }
                    if pace > .zero { try? await Task.sleep(for: pace) }
                    if Task.isCancelled { break }
                }
            }
        }
    }

    /// One node for as long as the simulator runs: its agent, its leases, and
    /// (at the model's disconnect rate) a dropped connection now and then.
    private func runNode(_ config: NodeConfig) async {
        let runner = SimulatedLeaseRunner(model: model, counters: counters)
        var quiet = logger
        quiet[metadataKey: "node"] = "\(config.name ?? "?")"
        let agent: NodeAgent
        do {
            agent = try NodeAgent(config: config, runner: runner, softwareVersion: "frameflow-sim", logger: quiet)
        } catch {
            logger.error("cannot start a simulated node", metadata: ["node": "\(config.name ?? "?")", "error": "\(error)"])
            return
        }
        // The agent runs the runner; a simulated disconnect closes the agent's connection, and the
        // agent reconnects as a real node does after a drop (resuming its held leases).
        await withDiscardingTaskGroup { group in
            if model.disconnectRate > 0 {
                group.addTask {
                    while true {
                        let seconds = -log(Double.random(in: Double.ulpOfOne..<1)) / model.disconnectRate
                        guard (try? await Task.sleep(for: .milliseconds(Int64(seconds * 1000)))) != nil else { return }
                        agent.dropConnection()
                        counters.disconnected()
                    }
                }
            }
            // Returns when the simulator stops, or when the node is stopped for good (revoked, refused).
            try? await agent.run()
            group.cancelAll()
        }
    }
}
