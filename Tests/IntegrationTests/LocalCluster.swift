import FrameClient
import Foundation
import FrameTestSupport

/// A coordinator and nodes as real processes on loopback, with their own CA,
/// for process-level tests.
final class LocalCluster: @unchecked Sendable {
    let dir: URL
    let certs: URL
    let httpPort = freePort()
    let clusterPort = freePort()
    let adminToken = "test-admin-token-0123456789"
    var coordinator: ChildProcess?
    var nodes: [String: ChildProcess] = [:]
    /// The address the coordinator's node listener binds (a fault test uses 0.0.0.0 to reach a network namespace).
    var clusterListenHost = "127.0.0.1"
    /// Every coordinator process this cluster started, oldest first (a restart test has several).
    var coordinators: [ChildProcess] = []

    let databaseURL: String

    /// A cluster with its own database on the server at `serverURL` (default: DATABASE_URL).
    init(serverURL: String? = nil) throws {
        guard let base = serverURL ?? ProcessInfo.processInfo.environment["DATABASE_URL"],
              let baseURL = URLComponents(string: base) else {
            throw Failure(description: "DATABASE_URL is not set: run the suite through scripts/test, which starts PostgreSQL")
        }
        // A database of its own, so tests never see each other's nodes or jobs.
        let name = "ff_it_\(UUID().uuidString.prefix(8).lowercased())"
        let created = try runCommand(URL(fileURLWithPath: "/usr/bin/psql"), [base, "-qc", "CREATE DATABASE \(name)"])
        guard created.status == 0 else { throw Failure(description: "cannot create database: \(created.output)") }
        var components = baseURL
        components.path = "/\(name)"
        databaseURL = components.string!
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("ff-it-\(UUID().uuidString)")
        certs = dir.appendingPathComponent("certs")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try "# empty: every setting comes from --set\n".write(
            to: dir.appendingPathComponent("cluster.yaml"), atomically: true, encoding: .utf8)
        let r = try runCommand(Binaries.url("frameflow"), ["certs", "init", "--dir", certs.path])
        guard r.status == 0 else { throw Failure(description: "certs init failed: \(r.output)") }
    }

    struct Failure: Error, CustomStringConvertible { var description: String }

    var admin: AdminClient { AdminClient(baseURL: URL(string: "http://127.0.0.1:\(httpPort)")!, token: adminToken) }

    /// Starts a coordinator; `httpPort`/`clusterPort` default to the cluster's own (a second
    /// coordinator on the same database and data directory takes others).
    func startCoordinator(
        extra: [String] = [], log: String = "coordinator.log", httpPort: Int? = nil, clusterPort: Int? = nil
    ) throws {
        let args = [
            "--config", dir.appendingPathComponent("cluster.yaml").path,
            "--set", "coordinator.http_listen=127.0.0.1:\(httpPort ?? self.httpPort)",
            "--set", "coordinator.cluster_listen=\(clusterListenHost):\(clusterPort ?? self.clusterPort)",
            "--set", "coordinator.tls.ca=\(certs.appendingPathComponent("ca.pem").path)",
            "--set", "coordinator.tls.cert=\(certs.appendingPathComponent("coordinator.pem").path)",
            "--set", "coordinator.tls.key=\(certs.appendingPathComponent("coordinator.key").path)",
            "--set", "coordinator.admin_token=\(adminToken)",
            "--database-url", databaseURL,
            "--set", "coordinator.storage.uploads_dir=\(dir.appendingPathComponent("data/uploads").path)",
            "--set", "coordinator.storage.spool_dir=\(dir.appendingPathComponent("data/spool").path)",
            "--set", "coordinator.storage.results_dir=\(dir.appendingPathComponent("data/results").path)",
        ] + extra
        coordinator = try ChildProcess(
            Binaries.url("frameflow-coordinator"), args, log: dir.appendingPathComponent(log))
        coordinators.append(coordinator!)
    }

    func issue(_ name: String) throws {
        let r = try runCommand(Binaries.url("frameflow"), ["certs", "issue", name, "--dir", certs.path])
        guard r.status == 0 else { throw Failure(description: "certs issue failed: \(r.output)") }
    }

    @discardableResult
    func startNode(_ name: String, extra: [String] = [], coordinatorHost: String = "127.0.0.1",
                   launcher: [String] = [], coordinators: String? = nil) throws -> ChildProcess {
        if !FileManager.default.fileExists(atPath: certs.appendingPathComponent("\(name).pem").path) { try issue(name) }
        // `launcher` runs the node through another program (e.g. `ip netns exec NS`).
        let executable = launcher.isEmpty ? Binaries.url("frameflow-node") : URL(fileURLWithPath: launcher[0])
        let prefix = launcher.isEmpty ? [] : Array(launcher.dropFirst()) + [Binaries.url("frameflow-node").path]
        let node = try ChildProcess(executable, prefix + [
            "--config", dir.appendingPathComponent("cluster.yaml").path,
            // `coordinators`: several addresses, comma-separated (node.coordinators).
            "--coordinator", coordinators ?? "\(coordinatorHost):\(clusterPort)",
            "--ca", certs.appendingPathComponent("ca.pem").path,
            "--cert", certs.appendingPathComponent("\(name).pem").path,
            "--key", certs.appendingPathComponent("\(name).key").path,
            "--set", "node.reconnect_max_backoff=1s",
        ] + extra, log: dir.appendingPathComponent("node-\(name).log"))
        nodes[name] = node
        return node
    }

    func nodeState(_ name: String) async -> String? {
        (try? await admin.nodes())?.first { $0.name == name }?.state
    }

    func waitUntilReady() async throws {
        try await eventually(60, "coordinator HTTP") { (try? await admin.nodes()) != nil }
    }

    func stop() {
        for node in nodes.values { node.terminate() }
        for process in coordinators { process.terminate() }
    }

    /// Everything the processes logged, for failure messages.
    var logs: String {
        var all = "--- coordinator\n" + (coordinator?.output.suffix(4000) ?? "")
        for (name, node) in nodes { all += "\n--- node \(name)\n" + node.output.suffix(3000) }
        return String(all)
    }
}
