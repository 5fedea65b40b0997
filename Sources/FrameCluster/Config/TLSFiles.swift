import Foundation

/// The three PEM files one side of the mutually authenticated connection
/// needs: the cluster CA to verify the peer, and its own certificate and key.
public struct TLSFiles: Sendable, Hashable {
    public var ca: URL
    public var certificate: URL
    public var key: URL

    public init(ca: URL, certificate: URL, key: URL) {
        self.ca = ca
        self.certificate = certificate
        self.key = key
    }
}
