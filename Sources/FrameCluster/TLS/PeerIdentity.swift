import NIOCore
import NIOSSL
import X509

/// Reads the authenticated identity of the peer: the common name of the
/// certificate it presented during the TLS handshake.
public enum PeerIdentity {
    /// The peer certificate's subject common name, or nil if there is none.
    public static func commonName(of channel: any Channel) async throws -> String? {
        guard let cert = try await channel.nioSSL_peerCertificate().get() else { return nil }
        return try commonName(derBytes: cert.toDERBytes())
    }

    /// The subject common name of a DER-encoded certificate.
    public static func commonName(derBytes: [UInt8]) throws -> String? {
        commonName(of: try Certificate(derEncoded: derBytes))
    }

    /// The last (most significant) common name in the subject, as TLS libraries read it.
    static func commonName(of cert: Certificate) -> String? {
        var name: String?
        for rdn in cert.subject {
            for attribute in rdn where attribute.type == .RDNAttributeType.commonName {
                name = String(describing: attribute.value)
            }
        }
        return name
    }
}

extension PeerIdentity {
    /// The subject common name of the first certificate in a PEM file (a
    /// node's own certificate: its name in the cluster).
    public static func commonName(pemFile: String) throws -> String? {
        let pem = try String(contentsOfFile: pemFile, encoding: .utf8)
        return commonName(of: try Certificate(pemEncoded: pem))
    }
}

import Foundation
