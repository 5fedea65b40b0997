import ArgumentParser
import FrameCluster
import FrameCoordinator
import FrameStore
import Foundation
import Logging

/// `frameflow-coordinator`: parses arguments, loads `cluster.yaml`, starts the coordinator.
@main
struct CoordinatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "frameflow-coordinator",
        abstract: "Run the FrameFlow coordinator: HTTP API for users and operators, mutual-TLS listener for nodes.",
        discussion: """
        Settings come from cluster.yaml (the `coordinator:` and `logging:` sections), then FRAMEFLOW_* \
        environment variables (e.g. FRAMEFLOW_COORDINATOR_HEARTBEAT_TIMEOUT=5s), then flags; \
        `--set KEY=VALUE` overrides any key (e.g. --set coordinator.lease_ttl=60s).
        """,
        version: FrameFlowVersion.current)

    @Option(name: .long, help: "Path of cluster.yaml.")
    var config: String = "cluster.yaml"

    @Option(name: .customLong("set"), help: "Override a cluster.yaml key, e.g. coordinator.max_attempts=5 (repeatable).")
    var overrides: [String] = []

    @Option(help: "HTTP listen address HOST:PORT (coordinator.http_listen).")
    var http: String?

    @Option(help: "Node listen address HOST:PORT (coordinator.cluster_listen).")
    var listen: String?

    @Option(help: "PostgreSQL URL (coordinator.database_url).")
    var databaseURL: String?

    mutating func run() async throws {
        var sets = overrides
        if let http { sets.append("coordinator.http_listen=\(http)") }
        if let listen { sets.append("coordinator.cluster_listen=\(listen)") }
        if let databaseURL { sets.append("coordinator.database_url=\(databaseURL)") }
        let cluster: ClusterConfig
        do {
            cluster = try ClusterConfig.load(file: ConfigFile.resolve(config), overrides: sets)
        } catch {
            FileHandle.standardError.write(Data("frameflow-coordinator: \(error)\n".utf8))
            throw ExitCode(2)
        }
        LoggingSetup.bootstrap(cluster.coordinator.logging)
        let logger = Logger(label: "frameflow.coordinator")
        let database = Database(url: cluster.coordinator.databaseURL, logger: logger)
        do {
            try await database.migrate()
        } catch {
            logger.critical("cannot prepare the database", metadata: ["error": "\(error)"])
            FileHandle.standardError.write(Data("frameflow-coordinator: database \(cluster.coordinator.databaseURL): \(error)\n".utf8))
            throw ExitCode(1)
        }
        let service: CoordinatorService
        do {
            service = try await CoordinatorService.withAPI(config: cluster.coordinator, database: database, logger: logger)
        } catch {
            FileHandle.standardError.write(Data("frameflow-coordinator: \(error)\n".utf8))
            throw ExitCode(2)
        }
        let failure: (any Error)?
        do {
            try await service.run()
            failure = nil
        } catch {
            failure = error
        }
        // The services are done: nothing uses the database any more.
        await database.shutdown()
        if let failure {
            logger.critical("coordinator failed", metadata: ["error": "\(failure)"])
            throw ExitCode(1)
        }
    }
}
