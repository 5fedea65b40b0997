import NIOSSL

/// Builds the TLS contexts of the node protocol: TLS 1.3 only, both sides
/// present a certificate issued by the cluster CA, and both verify the other.
///
/// The coordinator uses NIOSSL's mutual-TLS server configuration, which checks
/// the client's chain against the CA but not its address (nodes connect from
/// anywhere; their identity is the certificate's common name). The node
/// verifies the coordinator's certificate against the name it dials.
public enum TLSContexts {
    /// The coordinator's server context: requires and verifies a client certificate.
    public static func coordinator(_ files: TLSFiles) throws(TransportError) -> NIOSSLContext {
        do {
            var config = TLSConfiguration.makeServerConfigurationWithMTLS(
                certificateChain: try NIOSSLCertificate.fromPEMFile(files.certificate.path).map { .certificate($0) },
                privateKey: .privateKey(try NIOSSLPrivateKey(file: files.key.path, format: .pem)),
                trustRoots: .certificates(try NIOSSLCertificate.fromPEMFile(files.ca.path))
            )
            config.minimumTLSVersion = .tlsv13
            // A lost peer never answers close_notify; do not wait long for it.
            config.shutdownTimeout = .seconds(1)
            return try NIOSSLContext(configuration: config)
        } catch {
            throw TransportError.tlsSetup(files.certificate.path, String(describing: error))
        }
    }

    /// The node's client context: presents the node certificate and verifies the coordinator's.
    public static func node(_ files: TLSFiles) throws(TransportError) -> NIOSSLContext {
        do {
            var config = TLSConfiguration.makeClientConfiguration()
            config.certificateChain = try NIOSSLCertificate.fromPEMFile(files.certificate.path).map { .certificate($0) }
            config.privateKey = .privateKey(try NIOSSLPrivateKey(file: files.key.path, format: .pem))
            config.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(files.ca.path))
            config.certificateVerification = .fullVerification
            config.minimumTLSVersion = .tlsv13
            // A lost peer never answers close_notify; do not wait long for it.
            config.shutdownTimeout = .seconds(1)
            return try NIOSSLContext(configuration: config)
        } catch {
            throw TransportError.tlsSetup(files.certificate.path, String(describing: error))
        }
    }
}
