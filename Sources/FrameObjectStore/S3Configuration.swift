import Foundation

/// Where the objects live and how to reach them: the `storage.s3` part of cluster.yaml.
///
/// `endpoint` is the service URL (`https://s3.eu-west-1.amazonaws.com`, `http://127.0.0.1:9000`);
/// with `pathStyle` the bucket is the first path segment (`endpoint/bucket/key`, what MinIO, Ceph
/// RGW and Swift's s3api expect), otherwise it is part of the host name (`bucket.endpoint/key`,
/// AWS's default). Every key FrameFlow writes is put under `prefix` (e.g. `frameflow/`), so one
/// bucket can hold several clusters or other data.
public struct S3Configuration: Sendable, Equatable {
    public var endpoint: URL
    public var region: String
    public var bucket: String
    public var prefix: String
    public var pathStyle: Bool
    public var credentials: S3Credentials
    /// Bound on one request that is not a streamed download (connect, send, answer).
    public var requestTimeout: Duration

    public init(
        endpoint: URL, region: String, bucket: String, prefix: String = "", pathStyle: Bool = true,
        credentials: S3Credentials, requestTimeout: Duration = .seconds(120)
    ) {
        self.endpoint = endpoint
        self.region = region
        self.bucket = bucket
        self.prefix = prefix
        self.pathStyle = pathStyle
        self.credentials = credentials
        self.requestTimeout = requestTimeout
    }

    var isHTTPS: Bool { endpoint.scheme?.lowercased() == "https" }
    var port: Int { endpoint.port ?? (isHTTPS ? 443 : 80) }
    /// The host to connect to.
    var connectHost: String {
        let host = endpoint.host ?? "localhost"
        return pathStyle ? host : "\(bucket).\(host)"
    }
    /// The `Host` header (and what is signed as `host`): the port only when it is not the default.
    var hostHeader: String {
        let defaultPort = isHTTPS ? 443 : 80
        return port == defaultPort ? connectHost : "\(connectHost):\(port)"
    }

    /// The decoded request path of `key` (already prefixed), or of the bucket when `key` is nil.
    func path(forStoreKey key: String?) -> String {
        let base = endpoint.path.hasSuffix("/") ? String(endpoint.path.dropLast()) : endpoint.path
        let bucketPart = pathStyle ? "/\(bucket)" : ""
        guard let key else { return base + bucketPart + (pathStyle ? "" : "/") }
        return base + bucketPart + "/" + key
    }

    /// Checks what can be checked without asking the store.
    public func validate() throws(S3ConfigError) {
        guard let scheme = endpoint.scheme?.lowercased(), scheme == "http" || scheme == "https" else {
            throw S3ConfigError("storage.s3.endpoint must be an http:// or https:// URL")
        }
        guard let host = endpoint.host, !host.isEmpty else { throw S3ConfigError("storage.s3.endpoint has no host") }
        guard endpoint.query == nil else { throw S3ConfigError("storage.s3.endpoint must not carry a query") }
        // S3's bucket naming rules (3-63 of a-z 0-9 . -, starting and ending with a letter or digit).
        let allowed = Set("abcdefghijklmnopqrstuvwxyz0123456789.-")
        guard (3...63).contains(bucket.count), bucket.allSatisfy({ allowed.contains($0) }),
            let first = bucket.first, let last = bucket.last, first.isLetter || first.isNumber, last.isLetter || last.isNumber
        else { throw S3ConfigError("storage.s3.bucket \"\(bucket)\" is not a valid bucket name (3-63 characters of a-z, 0-9, '.', '-')") }
        if !pathStyle, bucket.contains(".") && isHTTPS {
            throw S3ConfigError("storage.s3.bucket contains '.', which breaks TLS with virtual-hosted addressing: set storage.s3.path_style: true")
        }
        guard !region.isEmpty else { throw S3ConfigError("storage.s3.region must not be empty") }
        guard !credentials.accessKeyID.isEmpty, !credentials.secretAccessKey.isEmpty else {
            throw S3ConfigError("storage.s3: no credentials (access_key_id and secret_access_key, from cluster.yaml, the environment or a file)")
        }
        guard !prefix.hasPrefix("/") else { throw S3ConfigError("storage.s3.prefix must not start with '/'") }
    }
}

/// A `storage.s3` setting FrameFlow cannot use, with the setting's name in the message.
public struct S3ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
