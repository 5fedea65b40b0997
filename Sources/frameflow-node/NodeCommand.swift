import ArgumentParser
import FrameCluster
import FrameNode
import Foundation
import Logging
import ServiceLifecycle

/// `frameflow-node`: parses arguments, loads `cluster.yaml`, starts the node agent.
@main
struct NodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "frameflow-node",
        abstract: "Run a FrameFlow node: connect to the coordinator over mutual TLS and decode the segments it leases.",
        discussion: """
        The node's identity is the common name of its certificate (from `frameflow certs issue NAME`). \
        Settings come from cluster.yaml (the `node:` and `logging:` sections), FRAMEFLOW_NODE_* environment \
        variables and flags. Exit status: 0 after a graceful shutdown (SIGTERM/SIGINT), 2 for a configuration \
        error, 3 when the coordinator refuses this node for good (revoked, identity mismatch, incompatible version).

        `frameflow-node --bundle FILE` instead installs a node bundle (from `frameflow certs issue NAME --bundle \
        FILE`) into --config-dir (/etc/frameflow): ca.pem, node.pem, node.key (mode 0600) and node.yaml, then \
        exits; the frameflow-node service runs with that configuration.
        """,
        version: FrameFlowVersion.current)

    @Option(name: .long, help: "Path of cluster.yaml.")
    var config: String = "cluster.yaml"

    @Option(name: .customLong("set"), help: "Override a cluster.yaml key, e.g. node.slots=4 (repeatable).")
    var overrides: [String] = []

    @Option(help: "Coordinator address HOST:PORT (node.coordinator), or several, comma-separated (node.coordinators).")
    var coordinator: String?

    @Option(help: "Node certificate PEM (node.tls.cert).")
    var cert: String?

    @Option(help: "Node private key PEM (node.tls.key).")
    var key: String?

    @Option(help: "Cluster CA PEM (node.tls.ca).")
    var ca: String?

    @Option(help: "Parallel segments (node.slots; 0 = number of cores).")
    var slots: Int?

    @Option(help: "Node name; must equal the certificate's common name (node.name).")
    var name: String?

    @Option(help: "Install this node bundle into --config-dir and exit.")
    var bundle: String?

    @Option(help: "Where --bundle installs the node's files.")
    var configDir: String = "/etc/frameflow"

    @Flag(help: "With --bundle: replace files that exist with other contents.")
    var force = false

    mutating func run() async throws {
        if let bundle {
            try install(bundle)
            return
        }
        var sets = overrides
        if let coordinator {
            sets.append(coordinator.contains(",") ? "node.coordinators=\(coordinator)" : "node.coordinator=\(coordinator)")
        }
        if let cert { sets.append("node.tls.cert=\(cert)") }
        if let key { sets.append("node.tls.key=\(key)") }
        if let ca { sets.append("node.tls.ca=\(ca)") }
        if let slots { sets.append("node.slots=\(slots)") }
        if let name { sets.append("node.name=\(name)") }
        let node: NodeConfig
        let agent: NodeAgent
        let logger: Logger
        do {
            let cluster = try ClusterConfig.load(file: ConfigFile.resolve(config), overrides: sets)
            node = try cluster.validatedForNode()
            LoggingSetup.bootstrap(node.logging)
            logger = Logger(label: "frameflow.node")
            agent = try NodeAgent(config: node, runner: SegmentLeaseRunner(slots: node.slots, logger: logger), softwareVersion: FrameFlowVersion.current, logger: logger)
        } catch {
            FileHandle.standardError.write(Data("frameflow-node: \(error)\n".utf8))
            throw ExitCode(2)
        }
        let group = ServiceGroup(configuration: .init(
            services: [.init(service: agent)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
        } catch let stopped as NodeAgent.Stopped {
            FileHandle.standardError.write(Data("frameflow-node: \(stopped)\n".utf8))
            throw ExitCode(3)
        }
    }

    private func install(_ path: String) throws {
        let directory = URL(fileURLWithPath: configDir)
        do {
            let bundle = try NodeBundle.read(from: URL(fileURLWithPath: path))
            let files = try bundle.install(into: directory, force: force)
            print("installed node '\(bundle.name)' (coordinator \(bundle.coordinator)):")
            for file in files { print("  \(file.path)") }
            print("start it: systemctl enable --now frameflow-node")
        } catch {
            FileHandle.standardError.write(Data("frameflow-node: \(error)\n".utf8))
            throw ExitCode(2)
        }
    }
}
