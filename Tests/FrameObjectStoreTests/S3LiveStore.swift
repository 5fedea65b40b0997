import Foundation
import FrameObjectStore

/// The real S3-compatible store the live tests use: scripts/test starts OpenStack Swift with s3api
/// (scripts/lib/objectstore.sh) and exports FRAMEFLOW_S3_URL and the keys; without them the live
/// tests say why and pass nothing off as tested.
enum S3LiveStore {
    static var url: URL? {
        ProcessInfo.processInfo.environment["FRAMEFLOW_S3_URL"].flatMap { $0.isEmpty ? nil : URL(string: $0) }
    }

    static var skipReason: String? {
        url == nil ? "FRAMEFLOW_S3_URL is unset: no object store to test against (scripts/test starts one; or source scripts/lib/objectstore.sh and run os_start DIR PORT)" : nil
    }

    /// A configuration on a bucket of its own per test (so tests run in parallel without sharing keys).
    static func configuration(bucket: String, prefix: String = "t/", secret: String? = nil) -> S3Configuration? {
        guard let url else { return nil }
        let env = ProcessInfo.processInfo.environment
        return S3Configuration(
            endpoint: url, region: env["FRAMEFLOW_S3_REGION"] ?? "us-east-1", bucket: bucket, prefix: prefix, pathStyle: true,
            credentials: S3Credentials(
                accessKeyID: env["FRAMEFLOW_S3_ACCESS_KEY_ID"] ?? "test:tester",
                secretAccessKey: secret ?? env["FRAMEFLOW_S3_SECRET_ACCESS_KEY"] ?? "testing"),
            requestTimeout: .seconds(60))
    }

    static func uniqueBucket(_ stem: String) -> String {
        "ff-\(stem)-\(UInt32.random(in: 0...UInt32.max))"
    }
}
