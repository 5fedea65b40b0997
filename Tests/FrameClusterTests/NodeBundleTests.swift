import Foundation
import Testing
@testable import FrameCluster

/// The node bundle: one file from `frameflow certs issue NAME --bundle`,
/// installed by `frameflow-node --bundle` into a configuration directory.
@Suite struct NodeBundleTests {
    func tempDir(_ tag: String) -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("ff-bundle-\(tag)-\(UUID().uuidString)")
    }

    func mode(_ url: URL) throws -> Int {
        try (FileManager.default.attributesOfItem(atPath: url.path)[.posixPermissions] as? NSNumber)?.intValue ?? -1
    }

    func makeCA() throws -> CertificateAuthority {
        let ca = CertificateAuthority(directory: tempDir("ca"))
        try ca.initialize()
        return ca
    }

    func bundle(_ ca: CertificateAuthority, name: String = "edge-7", server: String? = nil) throws -> NodeBundle {
        try ca.issueNodeBundle(name: name, coordinator: HostPort(host: "10.0.0.5", port: 7070), serverName: server)
    }

    @Test func roundTripsThroughItsTextForm() throws {
        let ca = try makeCA()
        let original = try bundle(ca, server: "coordinator.example")
        let text = original.encoded()
        #expect(text.hasPrefix("#"))
        #expect(text.contains("frameflow-node-bundle: 1\nname: edge-7\ncoordinator: 10.0.0.5:7070\n"))
        #expect(try NodeBundle.parse(text) == original)
        // CRLF line ends (a bundle passed through a Windows editor) read the same.
        #expect(try NodeBundle.parse(text.replacingOccurrences(of: "\n", with: "\r\n")) == original)
        #expect(try NodeBundle.parse(try bundle(ca, name: "v6").encoded()).serverName == nil)
        let v6 = try ca.issueNodeBundle(name: "v6", coordinator: HostPort(host: "::1", port: 7070))
        #expect(try NodeBundle.parse(v6.encoded()).coordinator == HostPort(host: "::1", port: 7070))
        // The CA's own files are all it leaves behind: the node's key exists only in the bundle.
        #expect(!FileManager.default.fileExists(atPath: ca.files(for: "edge-7").key.path))
    }

    @Test func writesTheBundlePrivatelyAndRefusesToReplaceIt() throws {
        let ca = try makeCA()
        let file = ca.directory.appendingPathComponent("edge-7.bundle")
        try bundle(ca).write(to: file)
        #expect(try mode(file) == 0o600)
        let before = try Data(contentsOf: file)
        #expect(throws: NodeBundleError.exists([file.path])) { try bundle(ca).write(to: file) }
        #expect(try Data(contentsOf: file) == before)
        try bundle(ca).write(to: file, force: true)
        #expect(try Data(contentsOf: file) != before)
        #expect(try NodeBundle.read(from: file).name == "edge-7")
    }

    @Test func installWritesTheNodeFilesAndAConfigTheNodeLoads() throws {
        let ca = try makeCA()
        let b = try bundle(ca, server: "coordinator.example")
        let etc = tempDir("etc").appendingPathComponent("frameflow")
        let files = try b.install(into: etc)
        #expect(files.map(\.lastPathComponent) == ["ca.pem", "node.pem", "node.key", "node.yaml"])
        #expect(try mode(etc.appendingPathComponent("node.key")) == 0o600)
        #expect(try mode(etc.appendingPathComponent("node.pem")) == 0o644)
        #expect(try mode(etc) == 0o755)
        #expect(try String(contentsOf: etc.appendingPathComponent("node.key"), encoding: .utf8) == b.keyPEM)
        // node.yaml is a cluster.yaml the node starts from as is: relative paths point at the installed files.
        let config = try ClusterConfig.load(file: etc.appendingPathComponent("node.yaml"), environment: [:])
        let node = try config.validatedForNode()
        #expect(node.name == "edge-7")
        #expect(node.coordinator == HostPort(host: "10.0.0.5", port: 7070))
        #expect(node.serverName == "coordinator.example")
        #expect(node.tls.ca.path == etc.appendingPathComponent("ca.pem").path)
        #expect(node.tls.certificate.path == etc.appendingPathComponent("node.pem").path)
        #expect(node.tls.key.path == etc.appendingPathComponent("node.key").path)
        #expect(try PeerIdentity.commonName(pemFile: node.tls.certificate.path) == "edge-7")
        // TLS accepts the installed files (the node's context loads them at start-up).
        _ = try TLSContexts.node(node.tls)
        // An IPv6 coordinator survives YAML (brackets would otherwise start a list).
        let v6 = try ca.issueNodeBundle(name: "v6", coordinator: HostPort(host: "fd00::5", port: 7070))
        let etc6 = tempDir("etc6")
        try v6.install(into: etc6)
        let node6 = try ClusterConfig.load(file: etc6.appendingPathComponent("node.yaml"), environment: [:]).node
        #expect(node6.coordinator == HostPort(host: "fd00::5", port: 7070))
    }

    @Test func installRefusesToReplaceOtherFilesWithoutForce() throws {
        let ca = try makeCA()
        let etc = tempDir("etc")
        let first = try bundle(ca, name: "first")
        try first.install(into: etc)
        // The same bundle again: nothing differs, nothing to refuse.
        try first.install(into: etc)
        let second = try bundle(ca, name: "second")
        do {
            try second.install(into: etc)
            Issue.record("a different bundle replaced the installed one without --force")
        } catch {
            // The CA is the same; the node's certificate, key and config differ.
            #expect(error == .exists(["node.pem", "node.key", "node.yaml"].map { etc.appendingPathComponent($0).path }))
            #expect("\(error)".contains("--force"))
        }
        #expect(try String(contentsOf: etc.appendingPathComponent("node.key"), encoding: .utf8) == first.keyPEM)
        try second.install(into: etc, force: true)
        #expect(try String(contentsOf: etc.appendingPathComponent("node.key"), encoding: .utf8) == second.keyPEM)
        #expect(try mode(etc.appendingPathComponent("node.key")) == 0o600)
    }

    @Test func badBundlesAreRefusedWithTheReason() throws {
        let ca = try makeCA()
        let good = try bundle(ca)
        let text = good.encoded()
        func refusal(_ text: String) -> String {
            do {
                _ = try NodeBundle.parse(text)
                return "accepted"
            } catch {
                return "\(error)"
            }
        }
        #expect(refusal("").contains("not a FrameFlow node bundle"))
        #expect(refusal("-----BEGIN CERTIFICATE-----\nAAAA\n").contains("not a FrameFlow node bundle"))
        #expect(refusal(text.replacingOccurrences(of: "bundle: 1", with: "bundle: 2")).contains("unsupported bundle version '2'"))
        #expect(refusal(text.replacingOccurrences(of: "coordinator: 10.0.0.5:7070\n", with: "")).contains("no 'coordinator'"))
        #expect(refusal(text.replacingOccurrences(of: "10.0.0.5:7070", with: "10.0.0.5")).contains("'coordinator'"))
        #expect(refusal(text.replacingOccurrences(of: "name: edge-7", with: "name: bad name")).contains("'name'"))
        #expect(refusal(text + "colour: blue\n").contains("unknown field 'colour'"))
        #expect(refusal(text + "name: again\n").contains("'name' appears twice"))
        // Truncated in the key (a partial copy).
        let cut = String(text[..<text.range(of: "-----END PRIVATE KEY-----")!.lowerBound])
        #expect(refusal(cut).contains("has no -----END line"))
        // The node's certificate from another cluster's CA.
        let other = try bundle(try makeCA())
        var foreign = good
        foreign.certificatePEM = other.certificatePEM
        foreign.keyPEM = other.keyPEM
        #expect(refusal(foreign.encoded()).contains("not signed by the bundle's CA"))
        // A key that is not the certificate's.
        var wrongKey = good
        wrongKey.keyPEM = try bundle(ca).keyPEM
        #expect(refusal(wrongKey.encoded()).contains("private key does not belong"))
        // A certificate for another name than the bundle says.
        var renamed = good
        renamed.name = "edge-8"
        #expect(refusal(renamed.encoded()).contains("the certificate is for 'edge-7'"))
        // The CA block holding the node's certificate (not a CA).
        var notCA = good
        notCA.caPEM = good.certificatePEM
        #expect(refusal(notCA.encoded()).contains("not a certificate authority"))
        // Garbage in a PEM block.
        #expect(refusal(text.replacingOccurrences(of: "certificate:\n-----BEGIN CERTIFICATE-----\n", with: "certificate:\n-----BEGIN CERTIFICATE-----\n!!!!\n"))
            .contains("'certificate': not a PEM certificate"))
        #expect(throws: NodeBundleError.self) { try NodeBundle.read(from: URL(fileURLWithPath: "/nonexistent/x.bundle")) }
    }
}
