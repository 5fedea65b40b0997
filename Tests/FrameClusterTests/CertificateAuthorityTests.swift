import Foundation
import Testing
@testable import FrameCluster

@Suite struct CertificateAuthorityTests {
    func tempDir() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("ff-ca-\(UUID().uuidString)")
    }

    func mode(_ url: URL) throws -> Int {
        try (FileManager.default.attributesOfItem(atPath: url.path)[.posixPermissions] as? NSNumber)?.intValue ?? -1
    }

    @Test func initCreatesCAAndCoordinatorWithPrivateKeys() throws {
        let ca = CertificateAuthority(directory: tempDir())
        let files = try ca.initialize(coordinatorIPs: ["10.200.0.1"])
        #expect(try mode(ca.caKeyURL) == 0o600)
        #expect(try mode(files.key) == 0o600)
        #expect(try PeerIdentity.commonName(pemFile: files.certificate.path) == "frameflow-coordinator")
    }

    @Test func issueNodeUsesTheNameAsCommonName() throws {
        let ca = CertificateAuthority(directory: tempDir())
        try ca.initialize()
        let files = try ca.issueNode(name: "node-7")
        #expect(try PeerIdentity.commonName(pemFile: files.certificate.path) == "node-7")
        #expect(try mode(files.key) == 0o600)
    }

    @Test func nothingOverwrittenWithoutForce() throws {
        let ca = CertificateAuthority(directory: tempDir())
        try ca.initialize()
        #expect(throws: CertificateError.self) { try ca.initialize() }
        let first = try ca.issueNode(name: "n1")
        let before = try Data(contentsOf: first.certificate)
        #expect(throws: CertificateError.exists(first.certificate.path)) { try ca.issueNode(name: "n1") }
        #expect(try Data(contentsOf: first.certificate) == before)
        try ca.issueNode(name: "n1", force: true)
        #expect(try Data(contentsOf: first.certificate) != before)
    }

    @Test func issueNeedsTheCA() {
        let ca = CertificateAuthority(directory: tempDir())
        #expect(throws: CertificateError.missingCA(ca.directory.path)) { try ca.issueNode(name: "n1") }
    }

    @Test(arguments: ["", "has space", "../escape", "-dash-first", String(repeating: "a", count: 65), "ünï"])
    func invalidNodeNamesRejected(_ name: String) throws {
        let ca = CertificateAuthority(directory: tempDir())
        try ca.initialize()
        #expect(throws: CertificateError.invalidNodeName(name)) { try ca.issueNode(name: name) }
    }

    @Test func reservedNamesRejected() throws {
        let ca = CertificateAuthority(directory: tempDir())
        try ca.initialize()
        #expect(throws: CertificateError.reservedName("coordinator")) { try ca.issueNode(name: "coordinator") }
    }
}
