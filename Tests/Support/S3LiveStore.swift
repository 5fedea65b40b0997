import Foundation
import FrameObjectStore

/// The real S3-compatible store the live tests use: scripts/test starts OpenStack Swift with s3api
/// (scripts/lib/objectstore.sh) and exports FRAMEFLOW_S3_URL and the keys; without them the live
/// tests say why and pass nothing off as tested. Every test gets a bucket of its own, so tests run
/// in parallel without sharing keys.
public enum S3LiveStore {
    public static var url: URL? {
        ProcessInfo.processInfo.environment["FRAMEFLOW_S3_URL"].flatMap { $0.isEmpty ? nil : URL(string: $0) }
    }

    public static var skipReason: String? {
        url == nil ? "FRAMEFLOW_S3_URL is unset: no object store to test against (scripts/test starts one; or source scripts/lib/objectstore.sh and run os_start DIR PORT)" : nil
    }

    public static var region: String { environment("FRAMEFLOW_S3_REGION", "us-east-1") }
    public static var accessKeyID: String { environment("FRAMEFLOW_S3_ACCESS_KEY_ID", "test:tester") }
    public static var secretAccessKey: String { environment("FRAMEFLOW_S3_SECRET_ACCESS_KEY", "testing") }

    /// A configuration on `bucket`; `port` replaces the store's (a proxy in front of it), `secret` the real one.
    public static func configuration(bucket: String, prefix: String = "t/", secret: String? = nil, port: Int? = nil,
                                     requestTimeout: Duration = .seconds(60)) -> S3Configuration? {
        guard var endpoint = url.flatMap({ URLComponents(url: $0, resolvingAgainstBaseURL: false) }) else { return nil }
        if let port { endpoint.port = port }
        return S3Configuration(
            endpoint: endpoint.url!, region: region, bucket: bucket, prefix: prefix, pathStyle: true,
            credentials: S3Credentials(accessKeyID: accessKeyID, secretAccessKey: secret ?? secretAccessKey),
            requestTimeout: requestTimeout)
    }

    public static func uniqueBucket(_ stem: String) -> String {
        "ff-\(stem)-\(UInt32.random(in: 0...UInt32.max))"
    }

    /// A client on a new bucket of its own (created); nil, with `suite`'s skip notice printed, without a store.
    public static func client(_ suite: String, stem: String, prefix: String = "t/", port: Int? = nil,
                              requestTimeout: Duration = .seconds(60)) async throws -> S3Client? {
        guard let configuration = configuration(bucket: uniqueBucket(stem), prefix: prefix, port: port,
                                                requestTimeout: requestTimeout) else {
            print("\(suite) skipped: \(skipReason!)")
            return nil
        }
        let client = try S3Client(configuration: configuration)
        try await client.createBucket()
        return client
    }

    /// The coordinator's `--set`s that put its storage (`storage.kind: s3`) on `configuration`'s bucket.
    public static func coordinatorSettings(_ configuration: S3Configuration) -> [String] {
        [
            "coordinator.storage.kind=s3",
            "coordinator.storage.s3.endpoint=\(configuration.endpoint.absoluteString)",
            "coordinator.storage.s3.bucket=\(configuration.bucket)",
            "coordinator.storage.s3.prefix=\(configuration.prefix)",
            "coordinator.storage.s3.access_key_id=\(configuration.credentials.accessKeyID)",
            "coordinator.storage.s3.secret_access_key=\(configuration.credentials.secretAccessKey)",
        ].flatMap { ["--set", $0] }
    }

    private static func environment(_ name: String, _ fallback: String) -> String {
        ProcessInfo.processInfo.environment[name].flatMap { $0.isEmpty ? nil : $0 } ?? fallback
    }
}
