/// One key of `cluster.yaml`: its dotted path, its kind and its default.
struct ConfigKey: Sendable {
    var path: String
    var kind: ConfigKind
    /// Textual default, parsed like any override; nil means "no value".
    var defaultValue: String?

    /// The environment variable that overrides this key:
    /// `coordinator.heartbeat_timeout` -> `FRAMEFLOW_COORDINATOR_HEARTBEAT_TIMEOUT`.
    var environmentName: String {
        "FRAMEFLOW_" + path.uppercased().replacingOccurrences(of: ".", with: "_")
    }
}

/// Every key `cluster.yaml` knows. An unknown key in the file, the environment
/// or a flag is an error, so a typo never silently falls back to a default.
enum ConfigKeys {
    static let all: [ConfigKey] = [
        // coordinator
        .init(path: "coordinator.http_listen", kind: .hostPort, defaultValue: "127.0.0.1:8080"),
        .init(path: "coordinator.cluster_listen", kind: .hostPort, defaultValue: "0.0.0.0:7070"),
        .init(path: "coordinator.database_url", kind: .string,
              defaultValue: "postgresql://frameflow@127.0.0.1:5432/frameflow"),
        .init(path: "coordinator.tls.ca", kind: .path, defaultValue: "run/certs/ca.pem"),
        .init(path: "coordinator.tls.cert", kind: .path, defaultValue: "run/certs/coordinator.pem"),
        .init(path: "coordinator.tls.key", kind: .path, defaultValue: "run/certs/coordinator.key"),
        .init(path: "coordinator.storage.uploads_dir", kind: .path, defaultValue: "run/data/uploads"),
        .init(path: "coordinator.storage.spool_dir", kind: .path, defaultValue: "run/data/spool"),
        .init(path: "coordinator.storage.results_dir", kind: .path, defaultValue: "run/data/results"),
        .init(path: "coordinator.storage.kind", kind: .choice(["local", "s3"]), defaultValue: "local"),
        .init(path: "coordinator.storage.s3.endpoint", kind: .string, defaultValue: nil),
        .init(path: "coordinator.storage.s3.region", kind: .string, defaultValue: "us-east-1"),
        .init(path: "coordinator.storage.s3.bucket", kind: .string, defaultValue: nil),
        .init(path: "coordinator.storage.s3.prefix", kind: .string, defaultValue: ""),
        .init(path: "coordinator.storage.s3.path_style", kind: .bool, defaultValue: "true"),
        .init(path: "coordinator.storage.s3.access_key_id", kind: .string, defaultValue: nil),
        .init(path: "coordinator.storage.s3.secret_access_key", kind: .string, defaultValue: nil),
        .init(path: "coordinator.storage.s3.secret_access_key_file", kind: .path, defaultValue: nil),
        .init(path: "coordinator.storage.s3.part_size", kind: .size, defaultValue: "16MiB"),
        .init(path: "coordinator.storage.s3.downloads", kind: .choice(["presigned", "stream"]), defaultValue: "presigned"),
        .init(path: "coordinator.storage.s3.uploads", kind: .choice(["local", "s3"]), defaultValue: "local"),
        .init(path: "coordinator.storage.s3.node_reads", kind: .choice(["coordinator", "direct"]), defaultValue: "coordinator"),
        .init(path: "coordinator.storage.s3.node_read_url_lifetime", kind: .duration, defaultValue: "1h"),
        .init(path: "coordinator.segment_seconds", kind: .double, defaultValue: "10"),
        .init(path: "coordinator.heartbeat_interval", kind: .duration, defaultValue: "1s"),
        .init(path: "coordinator.heartbeat_timeout", kind: .duration, defaultValue: "3s"),
        .init(path: "coordinator.lease_ttl", kind: .duration, defaultValue: "30s"),
        .init(path: "coordinator.max_attempts", kind: .int, defaultValue: "3"),
        .init(path: "coordinator.max_node_losses", kind: .int, defaultValue: "5"),
        .init(path: "coordinator.lease_resume_grace", kind: .duration, defaultValue: "0s"),
        .init(path: "coordinator.progress_timeout", kind: .duration, defaultValue: "60s"),
        .init(path: "coordinator.progress_factor", kind: .double, defaultValue: "2"),
        .init(path: "coordinator.max_frame_bytes", kind: .size, defaultValue: "16842752"),
        .init(path: "coordinator.upload.max_bytes", kind: .size, defaultValue: "500MB"),
        .init(path: "coordinator.upload.allowed_extensions", kind: .stringList,
              defaultValue: "mp4,avi,mov,mkv,wmv,flv,webm"),
        .init(path: "coordinator.upload.max_request_bytes", kind: .size, defaultValue: nil),
        .init(path: "coordinator.upload.max_files", kind: .int, defaultValue: "10"),
        .init(path: "coordinator.quota.max_stored_bytes", kind: .size, defaultValue: "50GB"),
        .init(path: "coordinator.quota.max_active_jobs", kind: .int, defaultValue: "100"),
        .init(path: "coordinator.auth.account_attempts", kind: .int, defaultValue: "10"),
        .init(path: "coordinator.auth.account_window", kind: .duration, defaultValue: "10m"),
        .init(path: "coordinator.auth.address_attempts", kind: .int, defaultValue: "30"),
        .init(path: "coordinator.auth.address_window", kind: .duration, defaultValue: "1m"),
        .init(path: "coordinator.auth.bcrypt_concurrency", kind: .int, defaultValue: "0"),
        .init(path: "coordinator.auth.bcrypt_queue", kind: .int, defaultValue: "64"),
        .init(path: "coordinator.http.idle_timeout", kind: .duration, defaultValue: "60s"),
        .init(path: "coordinator.http.body_timeout", kind: .duration, defaultValue: "60s"),
        .init(path: "coordinator.defaults.fps", kind: .rational, defaultValue: "1"),
        .init(path: "coordinator.defaults.format", kind: .choice(["png", "jpg"]), defaultValue: "png"),
        .init(path: "coordinator.defaults.quality", kind: .int, defaultValue: "2"),
        .init(path: "coordinator.admin_token", kind: .string, defaultValue: nil),
        .init(path: "coordinator.jwt_secret", kind: .string, defaultValue: nil),
        .init(path: "coordinator.jwt_secret_file", kind: .path, defaultValue: nil),
        .init(path: "coordinator.retention_days", kind: .int, defaultValue: "7"),
        .init(path: "coordinator.upload.resumable_expiry", kind: .duration, defaultValue: "24h"),
        .init(path: "coordinator.upload.max_unfinished_per_user", kind: .int, defaultValue: "10"),
        .init(path: "coordinator.public_base_url", kind: .string, defaultValue: nil),
        .init(path: "coordinator.cors.allowed_origins", kind: .stringList, defaultValue: ""),
        .init(path: "coordinator.downloads_per_minute", kind: .int, defaultValue: "10"),
        .init(path: "coordinator.refresh_token_ttl", kind: .duration, defaultValue: "720h"),
        .init(path: "coordinator.notifications.on", kind: .stringList, defaultValue: "failed"),
        .init(path: "coordinator.notifications.smtp.host", kind: .string, defaultValue: nil),
        .init(path: "coordinator.notifications.smtp.port", kind: .int, defaultValue: "25"),
        .init(path: "coordinator.notifications.smtp.tls", kind: .bool, defaultValue: "false"),
        .init(path: "coordinator.notifications.smtp.from", kind: .string, defaultValue: nil),
        .init(path: "coordinator.notifications.smtp.username", kind: .string, defaultValue: nil),
        .init(path: "coordinator.notifications.smtp.password", kind: .string, defaultValue: nil),
        .init(path: "coordinator.notifications.webhook.url", kind: .string, defaultValue: nil),
        .init(path: "coordinator.notifications.webhook.secret", kind: .string, defaultValue: nil),
        .init(path: "coordinator.notifications.retry_base", kind: .duration, defaultValue: "2s"),
        .init(path: "coordinator.notifications.retry_max", kind: .duration, defaultValue: "10m"),
        .init(path: "coordinator.notifications.max_attempts", kind: .int, defaultValue: "8"),
        .init(path: "coordinator.notifications.timeout", kind: .duration, defaultValue: "15s"),
        // node
        .init(path: "node.name", kind: .string, defaultValue: nil),
        .init(path: "node.coordinator", kind: .hostPort, defaultValue: "127.0.0.1:7070"),
        .init(path: "node.coordinators", kind: .stringList, defaultValue: ""),
        .init(path: "node.server_name", kind: .string, defaultValue: nil),
        .init(path: "node.tls.ca", kind: .path, defaultValue: "run/certs/ca.pem"),
        .init(path: "node.tls.cert", kind: .path, defaultValue: nil),
        .init(path: "node.tls.key", kind: .path, defaultValue: nil),
        .init(path: "node.slots", kind: .int, defaultValue: "0"),
        .init(path: "node.labels", kind: .stringMap, defaultValue: ""),
        .init(path: "node.reconnect_max_backoff", kind: .duration, defaultValue: "10s"),
        .init(path: "node.shutdown_grace", kind: .duration, defaultValue: "10s"),
        .init(path: "node.direct_reads", kind: .bool, defaultValue: "true"),
        // logging (both processes)
        .init(path: "logging.format", kind: .choice(["json", "text"]), defaultValue: "text"),
        .init(path: "logging.level", kind: .choice(["trace", "debug", "info", "notice", "warning", "error", "critical"]),
              defaultValue: "info"),
    ]

    static let byPath: [String: ConfigKey] = Dictionary(uniqueKeysWithValues: all.map { ($0.path, $0) })

    /// Keys whose value is a mapping rather than a section.
    static let mapKeys: Set<String> = Set(all.filter { if case .stringMap = $0.kind { true } else { false } }.map(\.path))
}
