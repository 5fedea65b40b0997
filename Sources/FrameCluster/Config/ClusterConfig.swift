import FrameCore
import Foundation

/// The whole of `cluster.yaml`: both processes read the same file and take
/// their own section, so one file describes a cluster.
///
/// Loading applies, in rising priority: built-in defaults, the file,
/// `FRAMEFLOW_*` environment variables, `--set key=value` flags. Unknown keys,
/// wrong types and impossible values stop start-up with a ``ConfigError``
/// naming the key.
public struct ClusterConfig: Sendable {
    public var coordinator: CoordinatorConfig
    public var node: NodeConfig

    /// Loads and validates a configuration.
    ///
    /// - Parameters:
    ///   - file: path of `cluster.yaml`; nil uses only defaults and overrides.
    ///   - environment: usually `ProcessInfo.processInfo.environment`.
    ///   - overrides: `key=value` strings from `--set` flags.
    public static func load(
        file: URL?, environment: [String: String] = ProcessInfo.processInfo.environment, overrides: [String] = []
    ) throws(ConfigError) -> ClusterConfig {
        let s = try ConfigSource.load(file: file, environment: environment, overrides: overrides)
        func fail(_ key: String, _ problem: String) -> ConfigError {
            ConfigError(key: key, problem: problem, source: s.origin(key))
        }
        func positiveDuration(_ key: String) throws(ConfigError) -> Duration {
            let d = s.duration(key)
            guard d > .zero else { throw fail(key, "must be greater than zero") }
            return d
        }
        let logging = LoggingConfig(
            format: LoggingConfig.Format(rawValue: s.string("logging.format") ?? "text") ?? .text,
            level: s.string("logging.level") ?? "info"
        )

        let interval = try positiveDuration("coordinator.heartbeat_interval")
        let timeout = try positiveDuration("coordinator.heartbeat_timeout")
        guard timeout > interval else {
            throw fail("coordinator.heartbeat_timeout",
                       "must be greater than coordinator.heartbeat_interval (\(timeout) <= \(interval))")
        }
        let leaseTTL = try positiveDuration("coordinator.lease_ttl")
        guard leaseTTL > timeout else {
            throw fail("coordinator.lease_ttl", "must be greater than coordinator.heartbeat_timeout")
        }
        let segmentSeconds = s.double("coordinator.segment_seconds")
        guard segmentSeconds >= 0.5, segmentSeconds <= 3600 else {
            throw fail("coordinator.segment_seconds", "must be between 0.5 and 3600, got \(segmentSeconds)")
        }
        let maxAttempts = s.int("coordinator.max_attempts")
        guard (1...100).contains(maxAttempts) else {
            throw fail("coordinator.max_attempts", "must be between 1 and 100, got \(maxAttempts)")
        }
        let maxNodeLosses = s.int("coordinator.max_node_losses")
        guard (1...100).contains(maxNodeLosses) else {
            throw fail("coordinator.max_node_losses", "must be between 1 and 100, got \(maxNodeLosses)")
        }
        let resumeGrace = s.duration("coordinator.lease_resume_grace")
        guard resumeGrace >= .zero, resumeGrace < leaseTTL else {
            throw fail("coordinator.lease_resume_grace", "must be at least 0 and less than coordinator.lease_ttl")
        }
        let progressTimeout = try positiveDuration("coordinator.progress_timeout")
        let progressFactor = s.double("coordinator.progress_factor")
        guard progressFactor >= 0, progressFactor <= 1000 else {
            throw fail("coordinator.progress_factor", "must be between 0 and 1000, got \(progressFactor)")
        }
        let maxFrame = s.int("coordinator.max_frame_bytes")
        guard maxFrame >= 65_536, maxFrame <= 1 << 30 else {
            throw fail("coordinator.max_frame_bytes", "must be between 64KiB and 1GiB, got \(maxFrame)")
        }
        let maxUpload = s.int("coordinator.upload.max_bytes")
        guard maxUpload > 0 else { throw fail("coordinator.upload.max_bytes", "must be greater than zero") }
        let extensions = s.list("coordinator.upload.allowed_extensions").map {
            $0.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "."))
        }
        guard !extensions.isEmpty else {
            throw fail("coordinator.upload.allowed_extensions", "must name at least one extension")
        }
        let quality = s.int("coordinator.defaults.quality")
        guard (1...31).contains(quality) else {
            throw fail("coordinator.defaults.quality", "must be between 1 (best) and 31 (worst), got \(quality)")
        }
        guard let rate = { () -> Rational? in
            if case .rational(let r)? = s.values["coordinator.defaults.fps"] { return r }
            return nil
        }() else { throw fail("coordinator.defaults.fps", "must be set") }
        let retention = s.int("coordinator.retention_days")
        guard retention >= 1 else { throw fail("coordinator.retention_days", "must be at least 1") }
        if let token = s.string("coordinator.admin_token"), token.count < 16 {
            throw fail("coordinator.admin_token", "must be at least 16 characters")
        }
        // HS256 keys (and the download-link HMAC) are only as strong as the secret: RFC 7518 asks for
        // at least the hash's 256 bits.
        if let secret = s.string("coordinator.jwt_secret"), secret.utf8.count < 32 {
            throw fail("coordinator.jwt_secret",
                       "must be at least 32 bytes (it is \(secret.utf8.count)); e.g. `openssl rand -base64 32`, "
                           + "or leave it unset to have one generated into coordinator.jwt_secret_file")
        }
        let maxRequest: Int64
        if s.values["coordinator.upload.max_request_bytes"] == nil {
            maxRequest = maxUpload + 64 * 1024
        } else {
            maxRequest = s.int("coordinator.upload.max_request_bytes")
            guard maxRequest >= maxUpload else {
                throw fail("coordinator.upload.max_request_bytes",
                           "must be at least coordinator.upload.max_bytes (\(maxUpload)), got \(maxRequest)")
            }
        }
        let maxFiles = s.int("coordinator.upload.max_files")
        guard (1...1000).contains(maxFiles) else {
            throw fail("coordinator.upload.max_files", "must be between 1 and 1000, got \(maxFiles)")
        }
        let maxStored = s.int("coordinator.quota.max_stored_bytes")
        guard maxStored >= 0 else { throw fail("coordinator.quota.max_stored_bytes", "must be 0 (no limit) or more") }
        let maxActive = s.int("coordinator.quota.max_active_jobs")
        guard maxActive >= 0 else { throw fail("coordinator.quota.max_active_jobs", "must be 0 (no limit) or more") }
        for key in ["coordinator.auth.account_attempts", "coordinator.auth.address_attempts"] {
            let n = s.int(key)
            guard (1...1_000_000).contains(n) else { throw fail(key, "must be between 1 and 1000000, got \(n)") }
        }
        let accountWindow = try positiveDuration("coordinator.auth.account_window")
        let addressWindow = try positiveDuration("coordinator.auth.address_window")
        let bcryptConcurrency = s.int("coordinator.auth.bcrypt_concurrency")
        guard (0...256).contains(bcryptConcurrency) else {
            throw fail("coordinator.auth.bcrypt_concurrency", "must be between 0 (one per core) and 256, got \(bcryptConcurrency)")
        }
        let bcryptQueue = s.int("coordinator.auth.bcrypt_queue")
        guard (0...100_000).contains(bcryptQueue) else {
            throw fail("coordinator.auth.bcrypt_queue", "must be between 0 and 100000, got \(bcryptQueue)")
        }
        let idleTimeout = s.duration("coordinator.http.idle_timeout")
        guard idleTimeout >= .zero else { throw fail("coordinator.http.idle_timeout", "must be 0 (never) or more") }
        let bodyTimeout = s.duration("coordinator.http.body_timeout")
        guard bodyTimeout >= .zero else { throw fail("coordinator.http.body_timeout", "must be 0 (never) or more") }
        let uploadsDirectory = try required(s, "coordinator.storage.uploads_dir")

        let notifications = try notificationConfig(s)
        let api = try apiSettings(s)

        var coordinator = CoordinatorConfig(
            httpListen: s.hostPort("coordinator.http_listen")!,
            clusterListen: s.hostPort("coordinator.cluster_listen")!,
            databaseURL: s.string("coordinator.database_url") ?? "",
            tls: TLSFiles(
                ca: try required(s, "coordinator.tls.ca"),
                certificate: try required(s, "coordinator.tls.cert"),
                key: try required(s, "coordinator.tls.key")),
            uploadsDirectory: uploadsDirectory,
            spoolDirectory: try required(s, "coordinator.storage.spool_dir"),
            resultsDirectory: try required(s, "coordinator.storage.results_dir"),
            segmentSeconds: segmentSeconds,
            heartbeatInterval: interval,
            heartbeatTimeout: timeout,
            leaseTTL: leaseTTL,
            maxAttempts: Int(maxAttempts),
            maxNodeLosses: Int(maxNodeLosses),
            leaseResumeGrace: resumeGrace,
            progressTimeout: progressTimeout,
            progressFactor: progressFactor,
            maxFrameBytes: Int(maxFrame),
            maxUploadBytes: maxUpload,
            maxRequestBytes: maxRequest,
            maxFilesPerRequest: Int(maxFiles),
            allowedExtensions: extensions,
            defaultRate: rate,
            defaultFormat: ImageFormat(name: s.string("coordinator.defaults.format") ?? "png") ?? .png,
            defaultQuality: Int(quality),
            adminToken: s.string("coordinator.admin_token"),
            jwtSecret: s.string("coordinator.jwt_secret"),
            jwtSecretFile: s.path("coordinator.jwt_secret_file")
                ?? uploadsDirectory.deletingLastPathComponent().appendingPathComponent("jwt_secret"),
            maxStoredBytesPerUser: maxStored == 0 ? nil : maxStored,
            maxActiveJobsPerUser: maxActive == 0 ? nil : Int(maxActive),
            loginAccountAttempts: Int(s.int("coordinator.auth.account_attempts")),
            loginAccountWindow: accountWindow,
            loginAddressAttempts: Int(s.int("coordinator.auth.address_attempts")),
            loginAddressWindow: addressWindow,
            bcryptConcurrency: bcryptConcurrency == 0 ? ProcessInfo.processInfo.activeProcessorCount : Int(bcryptConcurrency),
            bcryptQueue: Int(bcryptQueue),
            httpIdleTimeout: idleTimeout == .zero ? nil : idleTimeout,
            httpBodyTimeout: bodyTimeout == .zero ? nil : bodyTimeout,
            retentionDays: Int(retention),
            notifications: notifications,
            logging: logging
        )
        coordinator.resumableUploadExpiry = api.expiry
        coordinator.maxUnfinishedUploadsPerUser = api.maxUnfinished
        coordinator.publicBaseURL = api.publicBaseURL
        coordinator.corsAllowedOrigins = api.origins
        coordinator.downloadsPerMinute = api.downloadsPerMinute
        coordinator.refreshTokenTTL = api.refreshTTL
        coordinator.objectStorage = try ObjectStorageConfig.parse(s)

        let slots = s.int("node.slots")
        guard slots >= 0, slots <= 256 else {
            throw fail("node.slots", "must be between 0 (one per core) and 256, got \(slots)")
        }
        if let name = s.string("node.name"), !NodeName.isValid(name) {
            throw fail("node.name", "'\(name)' is not a valid node name (letters, digits, '.', '_', '-'; at most 64)")
        }
        let backoff = try positiveDuration("node.reconnect_max_backoff")
        let shutdownGrace = s.duration("node.shutdown_grace")
        guard shutdownGrace >= .zero, shutdownGrace <= .seconds(3600) else {
            throw fail("node.shutdown_grace", "must be between 0 and 1h")
        }
        var coordinators: [HostPort] = []
        for text in s.list("node.coordinators") {
            guard let address = HostPort(parsing: text) else {
                throw fail("node.coordinators", "'\(text)' is not HOST:PORT")
            }
            coordinators.append(address)
        }
        var node = NodeConfig(
            name: s.string("node.name"),
            coordinator: s.hostPort("node.coordinator")!,
            serverName: s.string("node.server_name"),
            tls: TLSFiles(
                ca: try required(s, "node.tls.ca"),
                certificate: s.path("node.tls.cert") ?? URL(fileURLWithPath: "/nonexistent"),
                key: s.path("node.tls.key") ?? URL(fileURLWithPath: "/nonexistent")),
            slots: slots == 0 ? ProcessInfo.processInfo.activeProcessorCount : Int(slots),
            labels: s.map("node.labels"),
            reconnectMaxBackoff: backoff,
            shutdownGrace: shutdownGrace,
            directReads: s.bool("node.direct_reads"),
            logging: logging
        )
        node.coordinators = coordinators
        return ClusterConfig(coordinator: coordinator, node: node)
    }

    /// The API-client settings (resumable uploads, public URL, CORS, download limit, refresh tokens).
    private struct APISettings {
        var expiry: Duration
        var maxUnfinished: Int
        var publicBaseURL: String?
        var origins: [String]
        var downloadsPerMinute: Int
        var refreshTTL: Duration
    }

    private static func apiSettings(_ s: ConfigSource) throws(ConfigError) -> APISettings {
        func fail(_ key: String, _ problem: String) -> ConfigError {
            ConfigError(key: key, problem: problem, source: s.origin(key))
        }
        let expiry = s.duration("coordinator.upload.resumable_expiry")
        guard expiry >= .seconds(1) else { throw fail("coordinator.upload.resumable_expiry", "must be at least 1s") }
        let maxUnfinished = s.int("coordinator.upload.max_unfinished_per_user")
        guard (1...10_000).contains(maxUnfinished) else {
            throw fail("coordinator.upload.max_unfinished_per_user", "must be between 1 and 10000, got \(maxUnfinished)")
        }
        var base = s.string("coordinator.public_base_url")
        if let text = base {
            guard let url = URL(string: text), ["http", "https"].contains(url.scheme?.lowercased() ?? ""), url.host != nil,
                  url.query == nil, url.fragment == nil
            else { throw fail("coordinator.public_base_url", "'\(text)' is not an http(s) URL such as https://frames.example") }
            base = text.hasSuffix("/") ? String(text.dropLast()) : text
        }
        var origins: [String] = []
        for origin in s.list("coordinator.cors.allowed_origins") {
            guard let url = URL(string: origin), ["http", "https"].contains(url.scheme?.lowercased() ?? ""), url.host != nil,
                  url.path.isEmpty || url.path == "/", url.query == nil
            else {
                throw fail("coordinator.cors.allowed_origins", "'\(origin)' is not an origin such as https://app.example:3000")
            }
            origins.append(origin.hasSuffix("/") ? String(origin.dropLast()).lowercased() : origin.lowercased())
        }
        let downloads = s.int("coordinator.downloads_per_minute")
        guard (0...100_000).contains(downloads) else {
            throw fail("coordinator.downloads_per_minute", "must be between 0 (unlimited) and 100000, got \(downloads)")
        }
        let refresh = s.duration("coordinator.refresh_token_ttl")
        guard refresh >= .seconds(60) else { throw fail("coordinator.refresh_token_ttl", "must be at least 1m") }
        return APISettings(expiry: expiry, maxUnfinished: Int(maxUnfinished), publicBaseURL: base, origins: origins,
                           downloadsPerMinute: Int(downloads), refreshTTL: refresh)
    }

    /// `coordinator.notifications`: each problem names its key.
    private static func notificationConfig(_ s: ConfigSource) throws(ConfigError) -> NotificationConfig {
        func fail(_ key: String, _ problem: String) -> ConfigError {
            ConfigError(key: key, problem: problem, source: s.origin(key))
        }
        let prefix = "coordinator.notifications."
        var events: Set<NotificationConfig.Event> = []
        for name in s.list(prefix + "on") {
            guard let event = NotificationConfig.Event(rawValue: name.lowercased()) else {
                throw fail(prefix + "on", "'\(name)' is not an event; use failed and/or completed")
            }
            events.insert(event)
        }
        var smtp: NotificationConfig.SMTP?
        if let host = s.string(prefix + "smtp.host") {
            let port = s.int(prefix + "smtp.port")
            guard (1...65_535).contains(port) else { throw fail(prefix + "smtp.port", "must be between 1 and 65535") }
            guard let from = s.string(prefix + "smtp.from") else {
                throw fail(prefix + "smtp.from", "must be set when coordinator.notifications.smtp.host is")
            }
            let parts = from.split(separator: "@", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty, !from.contains(where: { "\r\n<> ".contains($0) })
            else { throw fail(prefix + "smtp.from", "'\(from)' is not an e-mail address") }
            let user = s.string(prefix + "smtp.username"), password = s.string(prefix + "smtp.password")
            guard (user == nil) == (password == nil) else {
                throw fail(user == nil ? prefix + "smtp.username" : prefix + "smtp.password",
                           "smtp.username and smtp.password go together")
            }
            smtp = .init(host: host, port: Int(port), implicitTLS: s.bool(prefix + "smtp.tls"), from: from,
                         username: user, password: password)
        }
        var webhook: NotificationConfig.Webhook?
        if let text = s.string(prefix + "webhook.url") {
            guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
                  let host = url.host, !host.isEmpty
            else { throw fail(prefix + "webhook.url", "'\(text)' is not an http:// or https:// URL") }
            guard let secret = s.string(prefix + "webhook.secret") else {
                throw fail(prefix + "webhook.secret", "must be set when coordinator.notifications.webhook.url is")
            }
            guard secret.count >= 16 else { throw fail(prefix + "webhook.secret", "must be at least 16 characters") }
            webhook = .init(url: url, secret: secret)
        }
        let base = s.duration(prefix + "retry_base"), max = s.duration(prefix + "retry_max")
        guard base > .zero else { throw fail(prefix + "retry_base", "must be greater than zero") }
        guard max >= base else { throw fail(prefix + "retry_max", "must be at least coordinator.notifications.retry_base") }
        let attempts = s.int(prefix + "max_attempts")
        guard (1...100).contains(attempts) else {
            throw fail(prefix + "max_attempts", "must be between 1 and 100, got \(attempts)")
        }
        let timeout = s.duration(prefix + "timeout")
        guard timeout > .zero else { throw fail(prefix + "timeout", "must be greater than zero") }
        return NotificationConfig(
            on: events, smtp: smtp, webhook: webhook, retryBase: base, retryMax: max, maxAttempts: Int(attempts),
            timeout: timeout)
    }

    private static func required(_ s: ConfigSource, _ key: String) throws(ConfigError) -> URL {
        guard let url = s.path(key) else {
            throw ConfigError(key: key, problem: "must be set", source: s.origin(key))
        }
        return url
    }

    /// Checks that the node's own certificate and key are configured (they
    /// have no sensible default: each node has its own).
    public func validatedForNode() throws(ConfigError) -> NodeConfig {
        for (key, url) in [("node.tls.cert", node.tls.certificate), ("node.tls.key", node.tls.key)]
        where url.path == "/nonexistent" {
            throw ConfigError(key: key, problem: "must be set (the node's own certificate from `frameflow certs issue`)",
                              source: "configuration")
        }
        return node
    }
}
