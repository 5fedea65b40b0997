import FrameCore
import Foundation

/// The coordinator's settings, read from the `coordinator:` section of
/// `cluster.yaml` (see the file for what each key means).
public struct CoordinatorConfig: Sendable {
    public var httpListen: HostPort
    public var clusterListen: HostPort
    public var databaseURL: String
    public var tls: TLSFiles
    public var uploadsDirectory: URL
    public var spoolDirectory: URL
    public var resultsDirectory: URL
    public var segmentSeconds: Double
    public var heartbeatInterval: Duration
    public var heartbeatTimeout: Duration
    public var leaseTTL: Duration
    public var maxAttempts: Int
    /// Node deaths a segment may cause before its job fails with NODES_LOST.
    public var maxNodeLosses: Int
    /// How long the leases of a node whose connection dropped without GOODBYE
    /// are held for it to reconnect and resume them; 0 requeues at once.
    public var leaseResumeGrace: Duration
    public var maxFrameBytes: Int
    public var maxUploadBytes: Int64
    public var allowedExtensions: [String]
    public var defaultRate: Rational
    public var defaultFormat: ImageFormat
    public var defaultQuality: Int
    /// Bearer token for operator endpoints; nil disables them (they answer 403).
    public var adminToken: String?
    public var jwtSecret: String?
    public var retentionDays: Int
    public var logging: LoggingConfig
}

/// The node agent's settings, read from the `node:` section of `cluster.yaml`.
public struct NodeConfig: Sendable {
    /// The node's name; must equal its certificate's common name. Nil: taken from the certificate.
    public var name: String?
    public var coordinator: HostPort
    /// The name the coordinator's certificate is verified against; defaults to the coordinator's host.
    public var serverName: String?
    public var tls: TLSFiles
    /// Segments decoded in parallel; 0 in the file means "number of cores".
    public var slots: Int
    public var labels: [String: String]
    public var reconnectMaxBackoff: Duration
    public var logging: LoggingConfig
}

/// Log output settings shared by both processes.
public struct LoggingConfig: Sendable {
    public enum Format: String, Sendable { case json, text }
    public var format: Format
    public var level: String
}
