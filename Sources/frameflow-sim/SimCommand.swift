import ArgumentParser
import FrameCluster
import FrameSimulator
import Foundation
import Logging
import ServiceLifecycle

/// `frameflow-sim`: parses arguments, loads `cluster.yaml`, runs N simulated nodes.
@main
struct SimCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "frameflow-sim",
        abstract: "Run N simulated FrameFlow nodes in one process, to load-test a coordinator.",
        discussion: """
        Each simulated node is a real node session (its own certificate, mutual TLS, HELLO, heartbeats, LEASE, \
        READ, FRAME, SEGMENT_DONE) with canned images instead of FFmpeg. Certificates NAME-1 ... NAME-N are issued \
        by the cluster CA in --certs on first use. Settings come from cluster.yaml's `node:` section (coordinator, \
        CA, slots). Prints the totals every --report seconds.
        """)

    @Option(name: .long, help: "Path of cluster.yaml.")
    var config: String = "cluster.yaml"

    @Option(name: .customLong("set"), help: "Override a cluster.yaml key, e.g. node.slots=4 (repeatable).")
    var overrides: [String] = []

    @Option(help: "The CA's directory (ca.pem, ca.key); node certificates are issued into it.")
    var certs: String

    @Option(help: "Number of simulated nodes.")
    var nodes: Int = 10

    @Option(help: "Node names are PREFIX-1 ... PREFIX-N.")
    var prefix: String = "sim"

    @Option(help: "Parallel segments per node (node.slots).")
    var slots: Int?

    @Option(help: "Milliseconds per sample.")
    var sampleMs: Double = 20

    @Option(help: "Bytes READ from the source per segment.")
    var readBytes: Int = 256 * 1024

    @Option(help: "Bytes per FRAME image.")
    var frameBytes: Int = 20_000

    @Option(help: "The source's size WIDTHxHEIGHT (frames must have the job's output size).")
    var sourceSize: String = "320x240"

    @Option(help: "Probability that a segment fails (retryable).")
    var failureRate: Double = 0

    @Option(help: "Connection drops per node per second.")
    var disconnectRate: Double = 0

    @Option(help: "New sessions per second at start.")
    var connectRate: Double = 200

    @Option(help: "Seconds between progress lines (0: none).")
    var report: Double = 5

    mutating func run() async throws {
        var sets = overrides
        if let slots { sets.append("node.slots=\(slots)") }
        // The per-node certificate replaces these; they only need to pass validation.
        let ca = CertificateAuthority(directory: URL(fileURLWithPath: certs))
        sets += ["node.tls.cert=\(ca.caCertificateURL.path)", "node.tls.key=\(ca.caKeyURL.path)"]
        let parts = sourceSize.split(separator: "x").compactMap { Int($0) }
        guard parts.count == 2, parts[0] > 0, parts[1] > 0 else {
            throw ValidationError("--source-size must be WIDTHxHEIGHT, e.g. 320x240")
        }
        let base: NodeConfig
        do {
            let cluster = try ClusterConfig.load(file: ConfigFile.resolve(config), overrides: sets)
            base = try cluster.validatedForNode()
            LoggingSetup.bootstrap(base.logging)
        } catch {
            FileHandle.standardError.write(Data("frameflow-sim: \(error)\n".utf8))
            throw ExitCode(2)
        }
        let logger = Logger(label: "frameflow.sim")
        let model = DecodeModel(
            timePerSample: .microseconds(Int64(sampleMs * 1000)), bytesReadPerSegment: readBytes,
            frameBytes: frameBytes, sourceWidth: parts[0], sourceHeight: parts[1],
            failureRate: failureRate, disconnectRate: disconnectRate)
        let simulator = NodeSimulator(
            base: base, certificates: ca.directory, nodes: nodes, prefix: prefix, model: model,
            connectsPerSecond: connectRate, logger: logger)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: simulator)]
        if report > 0 { services.append(.init(service: Reporter(counters: simulator.counters, every: report))) }
        let group = ServiceGroup(configuration: .init(
            services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}

/// Prints the simulator's totals as one JSON line every few seconds (read by scripts/loadtest).
struct Reporter: Service {
    let counters: SimulatorCounters
    let every: Double

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(Int64(every * 1000)))
                let s = counters.snapshot
                FileHandle.standardOutput.write(Data("""
                    {"connected":\(s.connected),"leases":\(s.leases),"frames":\(s.frames),"frame_bytes":\(s.frameBytes),\
                    "done":\(s.done),"failed":\(s.failed),"disconnects":\(s.disconnects)}

                    """.utf8))
            }
        }
    }
}
