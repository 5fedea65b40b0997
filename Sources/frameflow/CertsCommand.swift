import ArgumentParser
import FrameCluster
import Foundation

/// `frameflow certs ...`: the cluster CA and node certificates.
struct CertsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "certs",
        abstract: "Create the cluster CA and issue node certificates.",
        subcommands: [Init.self, Issue.self])

    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create the cluster CA (ca.pem, ca.key) and the coordinator's certificate in DIR.",
            discussion: "Keys are written with mode 0600. Existing files are never replaced unless --force is given.")

        @Option(help: "Directory for the CA and certificates.")
        var dir: String

        @Option(name: .customLong("name"), help: "Extra DNS name for the coordinator certificate (repeatable).")
        var names: [String] = []

        @Option(name: .customLong("ip"), help: "Extra IP address for the coordinator certificate (repeatable).")
        var ips: [String] = []

        @Option(help: "Validity in days.")
        var days: Int = 3650

        @Flag(help: "Replace existing files.")
        var force = false

        func run() throws {
            let ca = CertificateAuthority(directory: URL(fileURLWithPath: dir))
            do {
                let files = try ca.initialize(coordinatorNames: names, coordinatorIPs: ips, validityDays: days, force: force)
                print("CA:          \(ca.caCertificateURL.path)")
                print("coordinator: \(files.certificate.path) (key \(files.key.path))")
            } catch {
                throw ValidationError("\(error)")
            }
        }
    }

    struct Issue: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Issue a node's key and certificate (NAME.pem, NAME.key in DIR), signed by the cluster CA.",
            discussion: "The node's identity in the cluster is NAME, the certificate's common name.")

        @Argument(help: "The node's name: letters, digits, '.', '_', '-'.")
        var name: String

        @Option(help: "Directory holding the cluster CA; the node's files are written there (unless --bundle).")
        var dir: String

        @Option(help: "Write one node bundle FILE instead (CA, certificate, key, coordinator address; mode 0600) for `frameflow-node --bundle FILE`.")
        var bundle: String?

        @Option(help: "With --bundle: the address HOST:PORT the node dials (the coordinator's cluster_listen as the node reaches it).")
        var coordinator: String?

        @Option(help: "With --bundle: the name to check the coordinator's certificate against (default: the host of --coordinator).")
        var serverName: String?

        @Option(help: "Validity in days.")
        var days: Int = 825

        @Flag(help: "Replace existing files.")
        var force = false

        func validate() throws {
            if bundle == nil, coordinator != nil || serverName != nil {
                throw ValidationError("--coordinator and --server-name go with --bundle")
            }
            if bundle != nil {
                guard let coordinator else { throw ValidationError("--bundle needs --coordinator HOST:PORT") }
                guard let address = HostPort(parsing: coordinator), address.port > 0 else {
                    throw ValidationError("--coordinator '\(coordinator)' is not HOST:PORT")
                }
            }
        }

        func run() throws {
            let ca = CertificateAuthority(directory: URL(fileURLWithPath: dir))
            if let bundle, let coordinator, let address = HostPort(parsing: coordinator) {
                do {
                    let issued = try ca.issueNodeBundle(name: name, coordinator: address, serverName: serverName, validityDays: days)
                    try issued.write(to: URL(fileURLWithPath: bundle), force: force)
                } catch {
                    throw ValidationError("\(error)")
                }
                print("bundle:      \(bundle) (node \(name), coordinator \(address); holds the node's private key)")
                print("on the node: frameflow-node --bundle \(URL(fileURLWithPath: bundle).lastPathComponent)")
                return
            }
            do {
                let files = try ca.issueNode(name: name, validityDays: days, force: force)
                print("certificate: \(files.certificate.path)")
                print("key:         \(files.key.path)")
            } catch {
                throw ValidationError("\(error)")
            }
        }
    }
}
