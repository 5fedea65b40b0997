import FrameClient
import Foundation
import FrameTestSupport
import Testing

/// `frameflow certs issue NAME --bundle FILE` and `frameflow-node --bundle FILE`
/// as an operator runs them: one file carries a node to another machine, and
/// the installed configuration alone (what the service unit starts) connects it.
@Suite(.serialized, .timeLimit(.minutes(3))) struct NodeBundleProcessTests {
    func mode(_ path: String) throws -> Int {
        try (FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue ?? -1
    }

    @Test func bundleFromTheCLIInstallsAndTheNodeRunsFromItsConfigAlone() async throws {
        let cluster = try LocalCluster()
        defer { cluster.stop() }
        try cluster.startCoordinator()
        try await cluster.waitUntilReady()
        let cli = Binaries.url("frameflow"), node = Binaries.url("frameflow-node")
        let bundle = cluster.dir.appendingPathComponent("far-1.bundle").path

        #expect(try runCommand(cli, ["certs", "issue", "far-1", "--dir", cluster.certs.path, "--bundle", bundle]).output
            .contains("--bundle needs --coordinator"))
        let issued = try runCommand(cli, [
            "certs", "issue", "far-1", "--dir", cluster.certs.path, "--bundle", bundle,
            "--coordinator", "127.0.0.1:\(cluster.clusterPort)",
        ])
        #expect(issued.status == 0, "\(issued.output)")
        #expect(try mode(bundle) == 0o600)
        // The key leaves the CA's machine only inside the bundle.
        #expect(!FileManager.default.fileExists(atPath: cluster.certs.appendingPathComponent("far-1.key").path))
        let again = try runCommand(cli, [
            "certs", "issue", "far-1", "--dir", cluster.certs.path, "--bundle", bundle,
            "--coordinator", "127.0.0.1:\(cluster.clusterPort)",
        ])
        #expect(again.status != 0 && again.output.contains("already exists"), "\(again.output)")

        let etc = cluster.dir.appendingPathComponent("etc/frameflow")
        let installed = try runCommand(node, ["--bundle", bundle, "--config-dir", etc.path])
        #expect(installed.status == 0, "\(installed.output)")
        #expect(installed.output.contains("installed node 'far-1'"))
        #expect(try mode(etc.appendingPathComponent("node.key").path) == 0o600)
        // Installing the same bundle again changes nothing and succeeds; another one needs --force.
        #expect(try runCommand(node, ["--bundle", bundle, "--config-dir", etc.path]).status == 0)
        let other = cluster.dir.appendingPathComponent("far-2.bundle").path
        #expect(try runCommand(cli, [
            "certs", "issue", "far-2", "--dir", cluster.certs.path, "--bundle", other,
            "--coordinator", "127.0.0.1:\(cluster.clusterPort)",
        ]).status == 0)
        let clash = try runCommand(node, ["--bundle", other, "--config-dir", etc.path])
        #expect(clash.status == 2 && clash.output.contains("use --force"), "\(clash.output)")

        // A damaged bundle: exit 2 with the reason, nothing installed.
        let broken = cluster.dir.appendingPathComponent("broken.bundle")
        let text = try String(contentsOfFile: bundle, encoding: .utf8)
        try String(text.prefix(text.count / 2)).write(to: broken, atomically: true, encoding: .utf8)
        let empty = cluster.dir.appendingPathComponent("etc-broken")
        let bad = try runCommand(node, ["--bundle", broken.path, "--config-dir", empty.path])
        #expect(bad.status == 2 && bad.output.contains("bad node bundle"), "\(bad.output)")
        #expect(!FileManager.default.fileExists(atPath: empty.path))

        // The service's command line: the installed node.yaml and nothing else.
        let running = try ChildProcess(node, ["--config", etc.appendingPathComponent("node.yaml").path],
                                       log: cluster.dir.appendingPathComponent("node-far-1.log"))
        defer { running.terminate() }
        try await eventually(30, "far-1 online\n\(running.output)\n\(cluster.logs)") {
            await cluster.nodeState("far-1") == "online"
        }
    }

    @Test func everyBinaryPrintsTheSameVersion() throws {
        var versions: Set<String> = []
        for binary in ["frameflow", "frameflow-node", "frameflow-coordinator"] {
            let r = try runCommand(Binaries.url(binary), ["--version"])
            #expect(r.status == 0, "\(binary): \(r.output)")
            let version = r.output.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(version.split(separator: ".").count == 3 && version.allSatisfy { $0.isNumber || $0 == "." }, "\(binary): \(version)")
            versions.insert(version)
        }
        #expect(versions.count == 1, "\(versions)")
    }
}
