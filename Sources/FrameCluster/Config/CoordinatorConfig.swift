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
    /// A lease with no READ, FRAME or SEGMENT_DONE for
    /// `max(progressTimeout, progressFactor x segment duration)` is taken back.
    public var progressTimeout: Duration
    public var progressFactor: Double
    public var maxFrameBytes: Int
    public var maxUploadBytes: Int64
    /// Largest upload request (all files together); at least `maxUploadBytes`.
    public var maxRequestBytes: Int64
    /// Most file parts in one upload request.
    public var maxFilesPerRequest: Int
    public var allowedExtensions: [String]
    public var defaultRate: Rational
    public var defaultFormat: ImageFormat
    public var defaultQuality: Int
    /// Bearer token for operator endpoints; nil disables them (they answer 403).
    public var adminToken: String?
    /// At least 32 bytes when set; nil: read from (or generated into) `jwtSecretFile`.
    public var jwtSecret: String?
    /// Where a generated secret is kept when `jwtSecret` is not set (mode 0600).
    public var jwtSecretFile: URL
    /// Per-user limits (nil: none).
    public var maxStoredBytesPerUser: Int64?
    public var maxActiveJobsPerUser: Int?
    /// Login attempts per account and attempts per client address, each within its window.
    public var loginAccountAttempts: Int
    public var loginAccountWindow: Duration
    public var loginAddressAttempts: Int
    public var loginAddressWindow: Duration
    /// bcrypt computations at once (already resolved: 0 in the file means one per core) and waiting room.
    public var bcryptConcurrency: Int
    public var bcryptQueue: Int
    /// An HTTP connection with no request in progress for this long is closed; nil: never.
    public var httpIdleTimeout: Duration?
    /// A connection whose client sends nothing of a request body for this long is closed; nil: never.
    public var httpBodyTimeout: Duration?
    public var retentionDays: Int
    public var notifications: NotificationConfig
    public var logging: LoggingConfig
    /// How long an unfinished resumable upload lives after its last chunk.
    public var resumableUploadExpiry: Duration = .seconds(24 * 3600)
    /// Unfinished resumable uploads one user may have at once.
    public var maxUnfinishedUploadsPerUser = 10
    /// The coordinator's address as clients reach it (`https://frames.example`), for absolute
    /// links; nil: each request's own scheme and Host.
    public var publicBaseURL: String?
    /// Browser origins allowed to call the API (CORS); empty: none.
    public var corsAllowedOrigins: [String] = []
    /// ZIP downloads per user per minute; 0: unlimited.
    public var downloadsPerMinute = 10
    public var refreshTokenTTL: Duration = .seconds(30 * 24 * 3600)
    /// `storage.kind: s3`: archives in an S3-compatible bucket; nil (`local`): in `resultsDirectory`.
    public var objectStorage: ObjectStorageConfig?
}

/// Who hears about finished jobs (`coordinator.notifications`): e-mail to the
/// job's owner over SMTP and/or a signed webhook, for the events in `on`.
public struct NotificationConfig: Sendable, Equatable {
    /// A finished-job event a notification can be sent for.
    public enum Event: String, Sendable, CaseIterable { case failed, completed }

    /// SMTP relay settings; nil sends no e-mail.
    public struct SMTP: Sendable, Equatable {
        public var host: String
        public var port: Int
        public var implicitTLS: Bool
        public var from: String
        public var username: String?
        public var password: String?
    }

    /// Webhook target; nil posts nothing.
    public struct Webhook: Sendable, Equatable {
        public var url: URL
        public var secret: String
    }

    public var on: Set<Event>
    public var smtp: SMTP?
    public var webhook: Webhook?
    /// Delay before the second attempt; it doubles each time up to `retryMax`.
    public var retryBase: Duration
    public var retryMax: Duration
    public var maxAttempts: Int
    /// Bound on one delivery (connect, exchange, answer).
    public var timeout: Duration

    public init(
        on: Set<Event> = [.failed], smtp: SMTP? = nil, webhook: Webhook? = nil, retryBase: Duration = .seconds(2),
        retryMax: Duration = .seconds(600), maxAttempts: Int = 8, timeout: Duration = .seconds(15)
    ) {
        self.timeout = timeout
        self.on = on
        self.smtp = smtp
        self.webhook = webhook
        self.retryBase = retryBase
        self.retryMax = retryMax
        self.maxAttempts = maxAttempts
    }
}

/// The node agent's settings, read from the `node:` section of `cluster.yaml`.
public struct NodeConfig: Sendable {
    /// The node's name; must equal its certificate's common name. Nil: taken from the certificate.
    public var name: String?
    public var coordinator: HostPort
    /// Several coordinators (`node.coordinators`): tried in turn, moving on when one goes away;
    /// empty means just `coordinator`. A name resolving to several addresses is tried at each of them.
    public var coordinators: [HostPort] = []
    /// Where the node may connect, in order: `coordinators`, or `coordinator` alone.
    public var coordinatorAddresses: [HostPort] { coordinators.isEmpty ? [coordinator] : coordinators }
    /// The name the coordinator's certificate is verified against; defaults to the coordinator's host.
    public var serverName: String?
    public var tls: TLSFiles
    /// Segments decoded in parallel; 0 in the file means "number of cores".
    public var slots: Int
    public var labels: [String: String]
    public var reconnectMaxBackoff: Duration
    /// On SIGTERM, how long running segments may take to finish before they
    /// are handed back to the coordinator (0: hand them back at once).
    public var shutdownGrace: Duration
    /// `node.direct_reads`: announce protocol version 2, so that a coordinator with
    /// `storage.s3.node_reads: direct` may hand out LEASE_URL (sources read from the store).
    /// Off: the node announces version 1 and reads everything through the coordinator
    /// (for nodes that cannot reach the object store).
    public var directReads: Bool = true
    public var logging: LoggingConfig
}

/// Log output settings shared by both processes.
public struct LoggingConfig: Sendable {
    public enum Format: String, Sendable { case json, text }
    public var format: Format
    public var level: String
}
