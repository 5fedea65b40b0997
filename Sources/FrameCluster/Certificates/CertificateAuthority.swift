import Crypto
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import SwiftASN1
import X509

/// The cluster's private certificate authority, kept as PEM files in one directory.
///
/// Operators run it through `frameflow certs init` (creates `ca.pem`/`ca.key`
/// and the coordinator's `coordinator.pem`/`coordinator.key`) and
/// `frameflow certs issue NAME` (creates `NAME.pem`/`NAME.key` for a node).
/// Every node and the coordinator trust exactly this CA, which is what makes
/// the node protocol mutually authenticated: a node's identity is the common
/// name of the certificate the CA issued it. Keys are P-256, written with mode
/// 0600, and no existing file is replaced unless `force` is set.
public struct CertificateAuthority: Sendable {
    /// The directory holding `ca.pem`, `ca.key` and the issued pairs.
    public let directory: URL

    public init(directory: URL) {
        self.directory = directory
    }

    public var caCertificateURL: URL { directory.appendingPathComponent("ca.pem") }
    public var caKeyURL: URL { directory.appendingPathComponent("ca.key") }

    /// The certificate and key files of an issued identity.
    public struct IssuedFiles: Sendable, Equatable {
        public var certificate: URL
        public var key: URL
    }

    /// Creates the CA and the coordinator's server certificate.
    ///
    /// - Parameters:
    ///   - coordinatorNames: DNS names the coordinator's certificate is valid for (`localhost` is always added).
    ///   - coordinatorIPs: IP addresses the coordinator's certificate is valid for (`127.0.0.1` and `::1` are always added).
    ///   - validityDays: lifetime of the CA (the coordinator certificate gets the same).
    ///   - force: replace existing files instead of refusing.
    @discardableResult
    public func initialize(
        clusterName: String = "FrameFlow cluster CA",
        coordinatorNames: [String] = [],
        coordinatorIPs: [String] = [],
        validityDays: Int = 3650,
        force: Bool = false
    ) throws(CertificateError) -> IssuedFiles {
        let coordinator = files(for: "coordinator")
        try refuseOverwrite([caCertificateURL, caKeyURL, coordinator.certificate, coordinator.key], force: force)
        try createDirectory()

        let caKey = P256.Signing.PrivateKey()
        let now = Date()
        let caName: DistinguishedName
        let caCert: Certificate
        do {
            caName = try DistinguishedName {
                OrganizationName("FrameFlow")
                CommonName(clusterName)
            }
            let caPublic = Certificate.PublicKey(caKey.publicKey)
            caCert = try Certificate(
                version: .v3,
                serialNumber: .init(),
                publicKey: caPublic,
                notValidBefore: now.addingTimeInterval(-300),
                notValidAfter: now.addingTimeInterval(Double(validityDays) * 86_400),
                issuer: caName,
                subject: caName,
                signatureAlgorithm: .ecdsaWithSHA256,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                    Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                    SubjectKeyIdentifier(hash: caPublic)
                },
                issuerPrivateKey: Certificate.PrivateKey(caKey)
            )
        } catch {
            throw CertificateError.generation(String(describing: error))
        }
        try write(certificate: caCert, to: caCertificateURL)
        try write(key: caKey, to: caKeyURL)

        var sans: [GeneralName] = [.dnsName("localhost")]
        for name in coordinatorNames where name != "localhost" { sans.append(.dnsName(name)) }
        var ips = ["127.0.0.1", "::1"]
        for ip in coordinatorIPs where !ips.contains(ip) { ips.append(ip) }
        for ip in ips {
            guard let bytes = IPAddressBytes.parse(ip) else { throw CertificateError.invalidIPAddress(ip) }
            sans.append(.ipAddress(ASN1OctetString(contentBytes: ArraySlice(bytes))))
        }
        return try issue(
            commonName: "frameflow-coordinator", fileStem: "coordinator", usage: .serverAuth,
            subjectAlternativeNames: sans, notValidBefore: now.addingTimeInterval(-300),
            notValidAfter: now.addingTimeInterval(Double(validityDays) * 86_400), force: true
        )
    }

    /// Issues a node's key and certificate, signed by this CA. The node's
    /// identity in the cluster is `name`, the certificate's common name.
    @discardableResult
    public func issueNode(
        name: String,
        validityDays: Int = 825,
        notValidBefore: Date? = nil,
        notValidAfter: Date? = nil,
        force: Bool = false
    ) throws(CertificateError) -> IssuedFiles {
        guard NodeName.isValid(name) else { throw CertificateError.invalidNodeName(name) }
        guard name != "ca", name != "coordinator" else { throw CertificateError.reservedName(name) }
        let start = notValidBefore ?? Date().addingTimeInterval(-300)
        let end = notValidAfter ?? Date().addingTimeInterval(Double(validityDays) * 86_400)
        return try issue(
            commonName: name, fileStem: name, usage: .clientAuth, subjectAlternativeNames: [.dnsName(name)],
            notValidBefore: start, notValidAfter: end, force: force
        )
    }

    /// The file names an identity called `stem` is written to.
    public func files(for stem: String) -> IssuedFiles {
        IssuedFiles(
            certificate: directory.appendingPathComponent("\(stem).pem"),
            key: directory.appendingPathComponent("\(stem).key")
        )
    }

    // MARK: - Internals

    private func issue(
        commonName: String, fileStem: String, usage: ExtendedKeyUsage.Usage,
        subjectAlternativeNames: [GeneralName], notValidBefore: Date, notValidAfter: Date, force: Bool
    ) throws(CertificateError) -> IssuedFiles {
        let target = files(for: fileStem)
        try refuseOverwrite([target.certificate, target.key], force: force)
        let (cert, key) = try sign(
            commonName: commonName, usage: usage, subjectAlternativeNames: subjectAlternativeNames,
            notValidBefore: notValidBefore, notValidAfter: notValidAfter)
        try createDirectory()
        try write(certificate: cert, to: target.certificate)
        try write(key: key, to: target.key)
        return target
    }

    /// Issues a node's certificate and key in memory and packs them with the
    /// CA certificate and the coordinator's address into a ``NodeBundle``;
    /// nothing is written to the CA's directory (the key leaves only in the bundle).
    public func issueNodeBundle(
        name: String, coordinator: HostPort, serverName: String? = nil, validityDays: Int = 825
    ) throws(CertificateError) -> NodeBundle {
        guard NodeName.isValid(name) else { throw CertificateError.invalidNodeName(name) }
        guard name != "ca", name != "coordinator" else { throw CertificateError.reservedName(name) }
        let now = Date()
        let (cert, key) = try sign(
            commonName: name, usage: .clientAuth, subjectAlternativeNames: [.dnsName(name)],
            notValidBefore: now.addingTimeInterval(-300), notValidAfter: now.addingTimeInterval(Double(validityDays) * 86_400))
        let caPEM: String
        do {
            caPEM = try String(contentsOf: caCertificateURL, encoding: .utf8)
        } catch {
            throw CertificateError.unreadable(caCertificateURL.path, String(describing: error))
        }
        do {
            return NodeBundle(
                name: name, coordinator: coordinator, serverName: serverName,
                caPEM: caPEM.trimmingCharacters(in: .whitespacesAndNewlines) + "\n",
                certificatePEM: try cert.serializeAsPEM().pemString + "\n",
                keyPEM: key.pemRepresentation + "\n")
        } catch {
            throw CertificateError.generation(String(describing: error))
        }
    }

    /// A fresh P-256 key and a certificate for it, signed by this CA.
    private func sign(
        commonName: String, usage: ExtendedKeyUsage.Usage,
        subjectAlternativeNames: [GeneralName], notValidBefore: Date, notValidAfter: Date
    ) throws(CertificateError) -> (Certificate, P256.Signing.PrivateKey) {
        let (caCert, caKey) = try loadCA()
        let key = P256.Signing.PrivateKey()
        do {
            let subject = try DistinguishedName {
                OrganizationName("FrameFlow")
                CommonName(commonName)
            }
            let publicKey = Certificate.PublicKey(key.publicKey)
            let caSKI = try? caCert.extensions.subjectKeyIdentifier?.keyIdentifier
            let cert = try Certificate(
                version: .v3,
                serialNumber: .init(),
                publicKey: publicKey,
                notValidBefore: notValidBefore,
                notValidAfter: notValidAfter,
                issuer: caCert.subject,
                subject: subject,
                signatureAlgorithm: .ecdsaWithSHA256,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.notCertificateAuthority)
                    Critical(KeyUsage(digitalSignature: true, keyEncipherment: true))
                    try ExtendedKeyUsage([usage])
                    SubjectAlternativeNames(subjectAlternativeNames)
                    SubjectKeyIdentifier(hash: publicKey)
                    AuthorityKeyIdentifier(keyIdentifier: caSKI ?? nil)
                },
                issuerPrivateKey: Certificate.PrivateKey(caKey)
            )
            return (cert, key)
        } catch {
            throw CertificateError.generation(String(describing: error))
        }
    }

    private func loadCA() throws(CertificateError) -> (Certificate, P256.Signing.PrivateKey) {
        guard FileManager.default.fileExists(atPath: caCertificateURL.path),
              FileManager.default.fileExists(atPath: caKeyURL.path) else {
            throw CertificateError.missingCA(directory.path)
        }
        do {
            let cert = try Certificate(pemEncoded: String(contentsOf: caCertificateURL, encoding: .utf8))
            let key = try P256.Signing.PrivateKey(pemRepresentation: String(contentsOf: caKeyURL, encoding: .utf8))
            return (cert, key)
        } catch {
            throw CertificateError.unreadable(caCertificateURL.path, String(describing: error))
        }
    }

    private func refuseOverwrite(_ urls: [URL], force: Bool) throws(CertificateError) {
        guard !force else { return }
        for url in urls where FileManager.default.fileExists(atPath: url.path) {
            throw CertificateError.exists(url.path)
        }
    }

    private func createDirectory() throws(CertificateError) {
        do {
            try FileManager.default.createDirectory(
                at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw CertificateError.io(directory.path, String(describing: error))
        }
    }

    private func write(certificate: Certificate, to url: URL) throws(CertificateError) {
        do {
            let pem = try certificate.serializeAsPEM().pemString + "\n"
            try writeFile(Data(pem.utf8), to: url, mode: 0o644)
        } catch let error as CertificateError {
            throw error
        } catch {
            throw CertificateError.generation(String(describing: error))
        }
    }

    private func write(key: P256.Signing.PrivateKey, to url: URL) throws(CertificateError) {
        try writeFile(Data((key.pemRepresentation + "\n").utf8), to: url, mode: 0o600)
    }

    private func writeFile(_ data: Data, to url: URL, mode: Int) throws(CertificateError) {
        try SecureFile.write(data, to: url, mode: mode_t(mode))
    }
}
