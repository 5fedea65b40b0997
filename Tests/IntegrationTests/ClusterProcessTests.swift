import FrameClient
import FrameCluster
import FrameCore
import Foundation
import FrameTestSupport
import Testing

/// The foundation's promises checked on real processes: certificates from the
/// CLI, mutual TLS against a plain `openssl s_client`, heartbeat loss with
/// SIGSTOP, reconnection, and the operator's node list.
@Suite(.serialized, .timeLimit(.minutes(3))) struct ClusterProcessTests {
    @Test func certsCommandWritesPrivateKeysAndRefusesToOverwrite() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ff-certs-\(UUID().uuidString)")
        let cli = Binaries.url("frameflow")
        #expect(try runCommand(cli, ["certs", "init", "--dir", dir.path]).status == 0)
        #expect(try runCommand(cli, ["certs", "issue", "edge-1", "--dir", dir.path]).status == 0)
        let attrs = try FileManager.default.attributesOfItem(atPath: dir.appendingPathComponent("edge-1.key").path)
        #expect((attrs[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        let again = try runCommand(cli, ["certs", "issue", "edge-1", "--dir", dir.path])
        #expect(again.status != 0)
        #expect(again.output.contains("already exists"))
        #expect(try runCommand(cli, ["certs", "issue", "edge-1", "--dir", dir.path, "--force"]).status == 0)
        let bad = try runCommand(cli, ["certs", "issue", "bad name", "--dir", dir.path])
        #expect(bad.status != 0)
        #expect(bad.output.contains("invalid node name"))
    }

    @Test func everyCommandExplainsItself() throws {
        for (binary, args) in [
            ("frameflow", ["--help"]), ("frameflow", ["certs", "init", "--help"]), ("frameflow", ["certs", "issue", "--help"]),
            ("frameflow", ["nodes", "list", "--help"]), ("frameflow", ["nodes", "revoke", "--help"]),
            ("frameflow-coordinator", ["--help"]), ("frameflow-node", ["--help"]),
        ] {
            let r = try runCommand(Binaries.url(binary), args)
            #expect(r.status == 0, "\(binary) \(args)")
            #expect(r.output.contains("USAGE"), "\(binary) \(args)")
        }
    }

    @Test func badConfigurationStopsStartupNamingTheKey() throws {
        let r = try runCommand(Binaries.url("frameflow-coordinator"), [
            "--set", "coordinator.heartbeat_interval=5s", "--set", "coordinator.heartbeat_timeout=2s",
        ])
        #expect(r.status == 2)
        #expect(r.output.contains("coordinator.heartbeat_timeout"))
        let n = try runCommand(Binaries.url("frameflow-node"), ["--set", "node.slots=-3"])
        #expect(n.status == 2)
        #expect(n.output.contains("node.slots"))
    }

    @Test func opensslWithoutClientCertificateCannotCompleteASession() async throws {
        let cluster = try LocalCluster()
        defer { cluster.stop() }
        try cluster.startCoordinator()
        try await cluster.waitUntilReady()
        try cluster.issue("probe")

        let hello = helloFrame("probe")
        let without = try await sClient(port: cluster.clusterPort, ca: cluster.certs, cert: nil, send: hello)
        #expect(!without.stdout.contains(0x02), "no WELCOME may come back: \(without.stderr)")
        let with = try await sClient(port: cluster.clusterPort, ca: cluster.certs, cert: "probe", send: hello)
        // A WELCOME frame: length prefix, then type 0x02.
        #expect(with.stdout.count > 6 && with.stdout[4] == 0x02, "expected WELCOME, got \(with.stdout.count) bytes: \(with.stderr)")
    }

    @Test func badFramesGetAnErrorFrameThenClose() async throws {
        let cluster = try LocalCluster()
        defer { cluster.stop() }
        try cluster.startCoordinator()
        try await cluster.waitUntilReady()
        try cluster.issue("fuzzer")
        // A length prefix over the limit: refused before any body is read.
        let oversized = try await sClient(port: cluster.clusterPort, ca: cluster.certs, cert: "fuzzer",
                                          send: [0x7F, 0xFF, 0xFF, 0xFF, 0x01, 0x00])
        #expect(errorFrameCode(oversized.stdout) == ErrorCode.frameTooLarge.rawValue)
        // An unknown message type.
        let unknown = try await sClient(port: cluster.clusterPort, ca: cluster.certs, cert: "fuzzer",
                                        send: [0x00, 0x00, 0x00, 0x02, 0x55, 0x00])
        #expect(errorFrameCode(unknown.stdout) == ErrorCode.unknownMessageType.rawValue)
    }

    /// The code of the first ERROR frame (type 0x7F) in raw bytes.
    func errorFrameCode(_ bytes: [UInt8]) -> UInt16? {
        var i = 0
        while i + 6 <= bytes.count {
            let length = Int(bytes[i]) << 24 | Int(bytes[i + 1]) << 16 | Int(bytes[i + 2]) << 8 | Int(bytes[i + 3])
            if bytes[i + 4] == 0x7F, i + 8 <= bytes.count { return UInt16(bytes[i + 6]) << 8 | UInt16(bytes[i + 7]) }
            i += 4 + length
        }
        return nil
    }

    @Test func stoppedNodeIsLostWithinTimeoutAndReconnectsAfterContinue() async throws {
        let cluster = try LocalCluster()
        defer { cluster.stop() }
        try cluster.startCoordinator()
        try await cluster.waitUntilReady()
        let node = try cluster.startNode("node-stop")
        try cluster.startNode("node-other")
        try await eventually(30, "both nodes online\n\(cluster.logs)") {
            let a = await cluster.nodeState("node-stop"), b = await cluster.nodeState("node-other")
            return a == "online" && b == "online"
        }
        let list = try runCommand(Binaries.url("frameflow"), [
            "nodes", "list", "--url", "http://127.0.0.1:\(cluster.httpPort)", "--token", cluster.adminToken,
        ])
        #expect(list.status == 0)
        #expect(list.output.contains("node-stop") && list.output.contains("online"))

        node.signal(SIGSTOP)
        let stoppedAt = Date()
        try await eventually(10, "node-stop offline") { await cluster.nodeState("node-stop") == "offline" }
        let lostAfter = Date().timeIntervalSince(stoppedAt)
        #expect(lostAfter <= 3.0 + 1.0, "lost after \(lostAfter)s")
        #expect(await cluster.nodeState("node-other") == "online")

        node.signal(SIGCONT)
        try await eventually(20, "node-stop back online\n\(cluster.logs)") { await cluster.nodeState("node-stop") == "online" }
    }

    @Test func revokedNodeIsDisconnectedAndExits() async throws {
        let cluster = try LocalCluster()
        defer { cluster.stop() }
        try cluster.startCoordinator()
        try await cluster.waitUntilReady()
        let node = try cluster.startNode("node-rev")
        try await eventually(30, "node online\n\(cluster.logs)") { await cluster.nodeState("node-rev") == "online" }
        let r = try runCommand(Binaries.url("frameflow"), [
            "nodes", "revoke", "node-rev", "--url", "http://127.0.0.1:\(cluster.httpPort)", "--token", cluster.adminToken,
        ])
        #expect(r.status == 0, "\(r.output)")
        let status = await node.waitForExit(timeout: 10)
        #expect(status == 3, "node should exit 3 after revocation\n\(cluster.logs)")
        #expect(await cluster.nodeState("node-rev") == "revoked")
        // Without the admin token, operator actions are refused.
        let denied = try runCommand(Binaries.url("frameflow"), [
            "nodes", "enable", "node-rev", "--url", "http://127.0.0.1:\(cluster.httpPort)", "--token", "wrong-token-wrong-token",
        ])
        #expect(denied.status != 0)
        #expect(denied.output.contains("FORBIDDEN"))
    }

    // MARK: helpers

    func helloFrame(_ name: String) -> [UInt8] {
        // type HELLO (0x01), flags 0, then the payload of proto-spec/messages.md.
        var bytes: [UInt8] = [0x01, 0x00]
        func u16(_ v: UInt16) { bytes += [UInt8(v >> 8), UInt8(v & 0xFF)] }
        func str(_ s: String) { u16(UInt16(s.utf8.count)); bytes += Array(s.utf8) }
        u16(1); u16(1); str(name); str("openssl"); u16(1); u16(0); u16(0)
        let length = UInt32(bytes.count)
        return [UInt8(length >> 24), UInt8((length >> 16) & 0xFF), UInt8((length >> 8) & 0xFF), UInt8(length & 0xFF)] + bytes
    }

    /// Runs `openssl s_client -quiet`, sends `send`, keeps the connection open a
    /// moment, and returns what the server sent (raw) and s_client's stderr.
    func sClient(port: Int, ca: URL, cert: String?, send: [UInt8]) async throws -> (stdout: [UInt8], stderr: String) {
        var args = ["s_client", "-quiet", "-tls1_3", "-connect", "127.0.0.1:\(port)", "-CAfile", ca.appendingPathComponent("ca.pem").path]
        if let cert {
            args += ["-cert", ca.appendingPathComponent("\(cert).pem").path, "-key", ca.appendingPathComponent("\(cert).key").path]
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = args
        let stdin = Pipe(), stdout = Pipe(), stderr = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        try stdin.fileHandleForWriting.write(contentsOf: Data(send))
        try await Task.sleep(for: .milliseconds(1500))
        try? stdin.fileHandleForWriting.close()
        let deadline = Date().addingTimeInterval(5)
        while process.isRunning && Date() < deadline { try await Task.sleep(for: .milliseconds(50)) }
        if process.isRunning { process.terminate() }
        let out = stdout.fileHandleForReading.readDataToEndOfFile()
        let err = stderr.fileHandleForReading.readDataToEndOfFile()
        return ([UInt8](out), String(decoding: err, as: UTF8.self))
    }
}
