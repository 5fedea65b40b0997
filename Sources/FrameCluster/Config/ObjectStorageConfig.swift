import Foundation

/// `coordinator.storage.kind: s3`: finished archives (and, with `uploads: s3`, the source videos)
/// kept in an S3-compatible bucket.
///
/// The ZIPs are written to the bucket with a multipart upload before the job is COMPLETED,
/// downloaded through presigned GET URLs or streamed through the coordinator, deleted by
/// retention. With `storage.s3.uploads: s3` the uploads go there too (staged in `uploads_dir`,
/// probed, stored before the upload is acknowledged, then read back by ranged GETs for the nodes);
/// with `local` (the default) they stay in `uploads_dir`. The frame spool stays in `spool_dir`.
/// The secret comes from `secret_access_key`, its environment variable or
/// `secret_access_key_file`, and is never logged.
public struct ObjectStorageConfig: Sendable, Equatable, CustomStringConvertible {
    /// How a download reaches the user.
    public enum Downloads: String, Sendable, Equatable {
        /// A redirect to a presigned GET URL (15 minutes): the coordinator moves no bytes.
        case presigned
        /// The coordinator streams the object through (ranged GETs), for stores clients cannot reach.
        case stream
    }

    /// Where the source videos live.
    public enum Uploads: String, Sendable, Equatable {
        /// `uploads_dir` on the coordinator's disk, as with `kind: local`.
        case local
        /// The bucket, at `<prefix>uploads/<job>/input.<ext>`.
        case s3
    }

    public var endpoint: URL
    public var region: String
    public var bucket: String
    public var prefix: String
    public var pathStyle: Bool
    public var accessKeyID: String
    public var secretAccessKey: String
    public var partSize: Int
    public var downloads: Downloads
    public var uploads: Uploads
    /// How nodes read the sources they decode (`storage.s3.node_reads`).
    public enum NodeReads: String, Sendable, Equatable {
        /// READ through the coordinator (the default; works for every node).
        case coordinator
        /// LEASE_URL: a presigned GET of the source object, read by the node with ranged GETs
        /// (nodes announcing protocol version 2; others still get READ leases).
        case direct
    }
    public var nodeReads: NodeReads = .coordinator
    /// Shortest lifetime of a LEASE_URL's presigned URL (`storage.s3.node_read_url_lifetime`, 1 h).
    public var nodeReadURLLifetime: Duration = .seconds(3600)

    public init(
        endpoint: URL, region: String, bucket: String, prefix: String, pathStyle: Bool, accessKeyID: String,
        secretAccessKey: String, partSize: Int, downloads: Downloads, uploads: Uploads = .local
    ) {
        self.uploads = uploads
        self.endpoint = endpoint
        self.region = region
        self.bucket = bucket
        self.prefix = prefix
        self.pathStyle = pathStyle
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.partSize = partSize
        self.downloads = downloads
    }

    public var description: String {
        "s3 \(endpoint.absoluteString) bucket=\(bucket) prefix=\(prefix) region=\(region) path_style=\(pathStyle) key=\(accessKeyID) (secret redacted) downloads=\(downloads.rawValue) uploads=\(uploads.rawValue) node_reads=\(nodeReads.rawValue)"
    }

    /// Reads `coordinator.storage.*` when `kind` is `s3`; nil for `local`.
    static func parse(_ s: ConfigSource) throws(ConfigError) -> ObjectStorageConfig? {
        func fail(_ key: String, _ problem: String) -> ConfigError {
            ConfigError(key: key, problem: problem, source: s.origin(key))
        }
        let p = "coordinator.storage.s3."
        guard s.string("coordinator.storage.kind") == "s3" else {
            // Uploads in a bucket that is not configured: say so rather than keep them on disk unseen.
            if s.string(p + "uploads") == "s3" {
                throw fail(p + "uploads", "uploads: s3 needs coordinator.storage.kind: s3 (and its storage.s3 settings)")
            }
            return nil
        }
        guard let endpointText = s.string(p + "endpoint") else { throw fail(p + "endpoint", "must be set when coordinator.storage.kind is s3") }
        guard let endpoint = URL(string: endpointText), ["http", "https"].contains(endpoint.scheme?.lowercased() ?? ""),
              let host = endpoint.host, !host.isEmpty, endpoint.query == nil
        else { throw fail(p + "endpoint", "'\(endpointText)' is not an http(s) URL such as https://s3.eu-west-1.amazonaws.com") }
        guard let bucket = s.string(p + "bucket") else { throw fail(p + "bucket", "must be set when coordinator.storage.kind is s3") }
        let allowed = Set("abcdefghijklmnopqrstuvwxyz0123456789.-")
        guard (3...63).contains(bucket.count), bucket.allSatisfy({ allowed.contains($0) }),
              bucket.first.map({ $0.isLetter || $0.isNumber }) == true, bucket.last.map({ $0.isLetter || $0.isNumber }) == true
        else { throw fail(p + "bucket", "'\(bucket)' is not a bucket name (3-63 characters of a-z, 0-9, '.', '-')") }
        var prefix = s.string(p + "prefix") ?? ""
        guard !prefix.hasPrefix("/") else { throw fail(p + "prefix", "must not start with '/'") }
        if !prefix.isEmpty && !prefix.hasSuffix("/") { prefix += "/" }
        guard let accessKeyID = s.string(p + "access_key_id") else {
            throw fail(p + "access_key_id", "must be set when coordinator.storage.kind is s3 (or FRAMEFLOW_COORDINATOR_STORAGE_S3_ACCESS_KEY_ID)")
        }
        let inline = s.string(p + "secret_access_key")
        let file = s.path(p + "secret_access_key_file")
        if inline != nil && file != nil {
            throw fail(p + "secret_access_key_file", "set secret_access_key or secret_access_key_file, not both")
        }
        var secret = inline
        if let file {
            guard let data = FileManager.default.contents(atPath: file.path) else {
                throw fail(p + "secret_access_key_file", "\(file.path) cannot be read")
            }
            secret = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        guard let secret, !secret.isEmpty else {
            throw fail(p + "secret_access_key", "must be set when coordinator.storage.kind is s3 (here, in FRAMEFLOW_COORDINATOR_STORAGE_S3_SECRET_ACCESS_KEY, or as a file in secret_access_key_file)")
        }
        let partSize = s.int(p + "part_size")
        guard (5 << 20...5 << 30).contains(partSize) else {
            throw fail(p + "part_size", "must be between 5MiB and 5GiB (S3's part limits), got \(partSize)")
        }
        let region = s.string(p + "region") ?? "us-east-1"
        var config = ObjectStorageConfig(
            endpoint: endpoint, region: region, bucket: bucket, prefix: prefix, pathStyle: s.bool(p + "path_style"),
            accessKeyID: accessKeyID, secretAccessKey: secret, partSize: Int(partSize),
            downloads: Downloads(rawValue: s.string(p + "downloads") ?? "presigned") ?? .presigned,
            uploads: Uploads(rawValue: s.string(p + "uploads") ?? "local") ?? .local)
        config.nodeReads = NodeReads(rawValue: s.string(p + "node_reads") ?? "coordinator") ?? .coordinator
        let lifetime = s.duration(p + "node_read_url_lifetime")
        guard lifetime >= .seconds(60), lifetime <= .seconds(7 * 86_400) else {
            throw fail(p + "node_read_url_lifetime", "must be between 1m and 168h (7 days, S3's limit for a presigned URL)")
        }
        config.nodeReadURLLifetime = lifetime
        return config
    }
}
