import Crypto
import FrameCore
import Foundation
import X509

/// Everything a new node needs, in one file: the cluster CA, the node's
/// certificate and private key, and the coordinator's address.
///
/// `frameflow certs issue NAME --bundle FILE --coordinator HOST:PORT` writes
/// one; `frameflow-node --bundle FILE` checks it and installs it into
/// `/etc/frameflow/` (``install(into:force:)``). The format is line-oriented
/// text (version 1), so an operator can read what it holds:
///
/// ```
/// # comment lines and blank lines are ignored
/// frameflow-node-bundle: 1
/// name: node-3
/// coordinator: 10.0.0.5:7070
/// server-name: coordinator.example      (optional: the name the coordinator's certificate is checked against)
/// ca:
/// -----BEGIN CERTIFICATE-----
/// ...
/// -----END CERTIFICATE-----
/// certificate:
/// -----BEGIN CERTIFICATE-----
/// ...
/// key:
/// -----BEGIN PRIVATE KEY-----
/// ...
/// ```
///
/// The first field must be `frameflow-node-bundle`; every other field appears
/// once, in any order; `ca`, `certificate` and `key` are followed by one PEM
/// block each. Parsing checks the whole bundle: the CA is a CA, the node's
/// certificate names `name` and is signed by that CA, and the key belongs to
/// the certificate, so a bundle that would only fail at the first connection
/// is refused at install time with the reason.
public struct NodeBundle: Sendable, Equatable {
    public static let formatVersion = 1

    public var name: String
    public var coordinator: HostPort
    public var serverName: String?
    public var caPEM: String
    public var certificatePEM: String
    public var keyPEM: String

    public init(name: String, coordinator: HostPort, serverName: String?, caPEM: String, certificatePEM: String, keyPEM: String) {
        self.name = name
        self.coordinator = coordinator
        self.serverName = serverName
        self.caPEM = caPEM
        self.certificatePEM = certificatePEM
        self.keyPEM = keyPEM
    }

    // MARK: - Text form

    /// The bundle as text (see the type's documentation for the format).
    public func encoded() -> String {
        var text = """
        # FrameFlow node bundle for '\(name)': the cluster CA, this node's certificate and
        # private key, and the coordinator's address. It holds a private key: keep it
        # secret, copy it to the node's machine and run `frameflow-node --bundle FILE`.
        frameflow-node-bundle: \(Self.formatVersion)
        name: \(name)
        coordinator: \(coordinator)

        """
        if let serverName { text += "server-name: \(serverName)\n" }
        text += "ca:\n" + Self.block(caPEM)
        text += "certificate:\n" + Self.block(certificatePEM)
        text += "key:\n" + Self.block(keyPEM)
        return text
    }

    private static func block(_ pem: String) -> String {
        pem.trimmingCharacters(in: .whitespacesAndNewlines) + "\n"
    }

    /// Reads and checks a bundle file.
    public static func read(from url: URL) throws(NodeBundleError) -> NodeBundle {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw NodeBundleError.unreadable(url.path, (error as NSError).localizedDescription)
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw NodeBundleError.notABundle("\(url.path) is not text")
        }
        return try parse(text)
    }

    /// Parses and checks a bundle's text.
    public static func parse(_ text: String) throws(NodeBundleError) -> NodeBundle {
        var fields: [String: String] = [:]
        var sawMagic = false
        // "\r\n" is one Character in Swift, and a newline: CRLF files split like LF ones.
        var lines = text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).map(String.init)
            .makeIterator()
        var number = 0
        while let line = lines.next() {
            number += 1
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            guard let colon = trimmed.firstIndex(of: ":") else {
                throw sawMagic ? .malformed(line: number, "expected 'field: value'")
                    : .notABundle("line \(number) is not 'frameflow-node-bundle: 1'")
            }
            let field = trimmed[..<colon].trimmingCharacters(in: .whitespaces)
            var value = trimmed[trimmed.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            if !sawMagic {
                guard field == "frameflow-node-bundle" else {
                    throw .notABundle("it does not start with 'frameflow-node-bundle: 1'")
                }
                guard value == String(formatVersion) else { throw .unsupportedVersion(value) }
                sawMagic = true
                continue
            }
            guard ["name", "coordinator", "server-name", "ca", "certificate", "key"].contains(field) else {
                throw .malformed(line: number, "unknown field '\(field)'")
            }
            guard fields[field] == nil else { throw .malformed(line: number, "'\(field)' appears twice") }
            if ["ca", "certificate", "key"].contains(field) {
                guard value.isEmpty else { throw .malformed(line: number, "the PEM block of '\(field)' starts on the next line") }
                value = try readPEM(field: field, from: &lines, number: &number)
            }
            fields[field] = value
        }
        guard sawMagic else { throw .notABundle("it is empty") }
        func required(_ field: String) throws(NodeBundleError) -> String {
            guard let value = fields[field], !value.isEmpty else { throw .missingField(field) }
            return value
        }
        let name = try required("name")
        guard NodeName.isValid(name) else { throw .invalid("name", "'\(name)' is not a valid node name") }
        let address = try required("coordinator")
        guard let coordinator = HostPort(parsing: address), coordinator.port > 0 else {
            throw .invalid("coordinator", "'\(address)' is not HOST:PORT")
        }
        let serverName = fields["server-name"]
        if let serverName, serverName.isEmpty || serverName.contains(where: { $0.isWhitespace || $0 == "\"" || $0 == "\\" }) {
            throw .invalid("server-name", "'\(serverName)' is not a host name")
        }
        let bundle = NodeBundle(
            name: name, coordinator: coordinator, serverName: serverName,
            caPEM: try required("ca"), certificatePEM: try required("certificate"), keyPEM: try required("key"))
        try bundle.check()
        return bundle
    }

    private static func readPEM(
        field: String, from lines: inout IndexingIterator<[String]>, number: inout Int
    ) throws(NodeBundleError) -> String {
        var block: [String] = []
        while let line = lines.next() {
            number += 1
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if block.isEmpty {
                if trimmed.isEmpty { continue }
                guard trimmed.hasPrefix("-----BEGIN ") else {
                    throw .malformed(line: number, "expected the PEM block of '\(field)' (-----BEGIN ...)")
                }
            }
            block.append(trimmed)
            if trimmed.hasPrefix("-----END ") { return block.joined(separator: "\n") + "\n" }
        }
        throw .malformed(line: number, "the PEM block of '\(field)' has no -----END line")
    }

    /// The cross-checks between the three PEM blocks and the name.
    private func check() throws(NodeBundleError) {
        let ca: Certificate, cert: Certificate, key: P256.Signing.PrivateKey
        do { ca = try Certificate(pemEncoded: caPEM) } catch { throw .invalid("ca", "not a PEM certificate: \(error)") }
        do { cert = try Certificate(pemEncoded: certificatePEM) } catch {
            throw .invalid("certificate", "not a PEM certificate: \(error)")
        }
        do { key = try P256.Signing.PrivateKey(pemRepresentation: keyPEM) } catch {
            throw .invalid("key", "not a PEM P-256 private key: \(error)")
        }
        let constraints = try? ca.extensions.basicConstraints
        guard case .isCertificateAuthority? = constraints else {
            throw .invalid("ca", "the certificate is not a certificate authority")
        }
        let commonName = PeerIdentity.commonName(of: cert)
        guard commonName == name else {
            throw .mismatch("the certificate is for '\(commonName ?? "no name")', the bundle names '\(name)'")
        }
        guard cert.issuer == ca.subject, ca.publicKey.isValidSignature(cert.signature, for: cert) else {
            throw .mismatch("the node's certificate is not signed by the bundle's CA")
        }
        guard Certificate.PublicKey(key.publicKey) == cert.publicKey else {
            throw .mismatch("the private key does not belong to the node's certificate")
        }
    }

    /// Writes the bundle to `url` with mode 0600 (it holds a private key);
    /// an existing file is replaced only with `force`.
    public func write(to url: URL, force: Bool = false) throws(NodeBundleError) {
        if !force, FileManager.default.fileExists(atPath: url.path) { throw .exists([url.path]) }
        do {
            try SecureFile.write(Data(encoded().utf8), to: url, mode: 0o600)
        } catch {
            throw .unwritable(url.path, "\(error)")
        }
    }

    // MARK: - Installing

    /// The files ``install(into:force:)`` writes, relative to its directory.
    public enum InstalledFile: String, CaseIterable, Sendable {
        case ca = "ca.pem"
        case certificate = "node.pem"
        case key = "node.key"
        case config = "node.yaml"

        var mode: mode_t { self == .key ? 0o600 : 0o644 }
    }

    /// The `cluster.yaml`-format configuration the node runs with (paths relative to its directory).
    public func configuration() -> String {
        var yaml = """
        # Written by `frameflow-node --bundle` for node '\(name)'. Settings are those of
        # cluster.yaml's node: and logging: sections (see the coordinator's cluster.yaml);
        # relative paths are resolved against this file's directory.
        node:
          name: "\(name)"
          coordinator: "\(coordinator)"

        """
        if let serverName { yaml += "  server_name: \"\(serverName)\"\n" }
        yaml += """
          tls:
            ca: \(InstalledFile.ca.rawValue)
            cert: \(InstalledFile.certificate.rawValue)
            key: \(InstalledFile.key.rawValue)

        """
        return yaml
    }

    /// Writes the CA, the node's certificate, its key (mode 0600) and `node.yaml`
    /// into `directory` (created with mode 0755 if missing). A file that exists
    /// with other contents is replaced only with `force`; identical ones are
    /// left as they are, so installing the same bundle twice succeeds.
    @discardableResult
    public func install(into directory: URL, force: Bool = false) throws(NodeBundleError) -> [URL] {
        let contents: [(InstalledFile, String)] = [
            (.ca, caPEM), (.certificate, certificatePEM), (.key, keyPEM), (.config, configuration()),
        ]
        let targets = contents.map { (directory.appendingPathComponent($0.0.rawValue), Data($0.1.utf8), $0.0.mode) }
        if !force {
            let clashing = targets.filter { url, data, _ in
                FileManager.default.fileExists(atPath: url.path) && (try? Data(contentsOf: url)) != data
            }
            if !clashing.isEmpty { throw .exists(clashing.map(\.0.path)) }
        }
        do {
            try FileManager.default.createDirectory(
                at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        } catch {
            throw .unwritable(directory.path, (error as NSError).localizedDescription)
        }
        // The key and certificates first, the configuration last: a node.yaml
        // (which the service unit waits for) never points at missing files.
        for (url, data, mode) in targets {
            do {
                try SecureFile.write(data, to: url, mode: mode)
            } catch {
                throw .unwritable(url.path, "\(error)")
            }
        }
        return targets.map(\.0)
    }
}

/// Why a node bundle was refused; each case says which part is wrong.
public enum NodeBundleError: Error, Sendable, Equatable, CustomStringConvertible, CodedError {
    case unreadable(String, String)
    case notABundle(String)
    case unsupportedVersion(String)
    case malformed(line: Int, String)
    case missingField(String)
    case invalid(String, String)
    case mismatch(String)
    case exists([String])
    case unwritable(String, String)

    public var code: ErrorCode { .configInvalid }
    public var message: String { description }

    public var description: String {
        switch self {
        case .unreadable(let path, let why): "cannot read the bundle \(path): \(why)"
        case .notABundle(let why): "not a FrameFlow node bundle: \(why)"
        case .unsupportedVersion(let v):
            "unsupported bundle version '\(v)' (this release reads version \(NodeBundle.formatVersion))"
        case .malformed(let line, let why): "bad node bundle, line \(line): \(why)"
        case .missingField(let field): "bad node bundle: no '\(field)'"
        case .invalid(let field, let why): "bad node bundle: '\(field)': \(why)"
        case .mismatch(let why): "bad node bundle: \(why)"
        case .exists(let paths):
            "\(paths.joined(separator: ", ")) already \(paths.count == 1 ? "exists" : "exist") with other contents (use --force to replace)"
        case .unwritable(let path, let why): "cannot install \(path): \(why)"
        }
    }
}
