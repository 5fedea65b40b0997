import Foundation
import Testing
@testable import FrameCluster

/// `coordinator.storage.kind` and `coordinator.storage.s3`: local by default, every mistake names
/// its key, the secret comes from the file, the environment or a file of its own and is never printed.
@Suite struct StorageConfigTests {
    static let base = [
        "coordinator.storage.kind=s3", "coordinator.storage.s3.endpoint=http://127.0.0.1:9000",
        "coordinator.storage.s3.bucket=frames", "coordinator.storage.s3.access_key_id=AKID",
    ]

    func load(_ overrides: [String], environment: [String: String] = [:]) throws(ConfigError) -> ObjectStorageConfig? {
        try ClusterConfig.load(file: nil, environment: environment, overrides: overrides).coordinator.objectStorage
    }

    func problem(_ overrides: [String]) -> ConfigError? {
        do {
            _ = try load(overrides)
            return nil
        } catch {
            return error
        }
    }

    @Test func localIsTheDefault() throws {
        #expect(try load([]) == nil)
    }

    @Test func s3FromSettingsAndTheSecretFromTheEnvironment() throws {
        let config = try #require(try load(Self.base + ["coordinator.storage.s3.prefix=prod"],
                                           environment: ["FRAMEFLOW_COORDINATOR_STORAGE_S3_SECRET_ACCESS_KEY": "s3cr3t-value"]))
        #expect(config.endpoint.absoluteString == "http://127.0.0.1:9000")
        #expect(config.bucket == "frames")
        #expect(config.prefix == "prod/")
        #expect(config.pathStyle)
        #expect(config.region == "us-east-1")
        #expect(config.secretAccessKey == "s3cr3t-value")
        #expect(config.partSize == 16 << 20)
        #expect(config.downloads == .presigned)
        #expect(!"\(config)".contains("s3cr3t-value"))
    }

    @Test func nodeReadsThroughTheCoordinatorByDefaultOrDirect() throws {
        let secret = "coordinator.storage.s3.secret_access_key=s"
        let plain = try #require(try load(Self.base + [secret]))
        #expect(plain.nodeReads == .coordinator)
        #expect(plain.nodeReadURLLifetime == .seconds(3600))
        let direct = try #require(try load(Self.base + [secret, "coordinator.storage.s3.node_reads=direct",
                                                        "coordinator.storage.s3.node_read_url_lifetime=2h"]))
        #expect(direct.nodeReads == .direct)
        #expect(direct.nodeReadURLLifetime == .seconds(7200))
        #expect("\(direct)".contains("node_reads=direct"))
        #expect(problem(Self.base + [secret, "coordinator.storage.s3.node_reads=sometimes"])?.key == "coordinator.storage.s3.node_reads")
        #expect(problem(Self.base + [secret, "coordinator.storage.s3.node_read_url_lifetime=169h"])?.key
                == "coordinator.storage.s3.node_read_url_lifetime")
        #expect(problem(Self.base + [secret, "coordinator.storage.s3.node_read_url_lifetime=10s"])?.key
                == "coordinator.storage.s3.node_read_url_lifetime")
    }

    @Test func nodesReadDirectlyUnlessTold() throws {
        #expect(try ClusterConfig.load(file: nil, environment: [:], overrides: []).node.directReads)
        #expect(try !ClusterConfig.load(file: nil, environment: [:], overrides: ["node.direct_reads=false"]).node.directReads)
    }

    @Test func secretFromAFile() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("ff-s3-secret-\(UUID().uuidString)")
        try "from-a-file\n".write(to: file, atomically: true, encoding: .utf8)
        let config = try #require(try load(Self.base + ["coordinator.storage.s3.secret_access_key_file=\(file.path)"]))
        #expect(config.secretAccessKey == "from-a-file")
        #expect(problem(Self.base + ["coordinator.storage.s3.secret_access_key_file=\(file.path)",
                                     "coordinator.storage.s3.secret_access_key=x"])?.key == "coordinator.storage.s3.secret_access_key_file")
    }

    @Test func mistakesNameTheirKey() {
        let secret = "coordinator.storage.s3.secret_access_key=s"
        #expect(problem(["coordinator.storage.kind=s3"])?.key == "coordinator.storage.s3.endpoint")
        #expect(problem(Self.base)?.key == "coordinator.storage.s3.secret_access_key")
        #expect(problem(Self.base.filter { !$0.contains("bucket") } + [secret])?.key == "coordinator.storage.s3.bucket")
        #expect(problem(Self.base + [secret, "coordinator.storage.s3.bucket=Not_A_Bucket"])?.key == "coordinator.storage.s3.bucket")
        #expect(problem(Self.base + [secret, "coordinator.storage.s3.endpoint=ftp://x"])?.key == "coordinator.storage.s3.endpoint")
        #expect(problem(Self.base + [secret, "coordinator.storage.s3.part_size=1MiB"])?.key == "coordinator.storage.s3.part_size")
        #expect(problem(Self.base + [secret, "coordinator.storage.kind=minio"])?.key == "coordinator.storage.kind")
        // Uploads in the bucket without a bucket: refused by name, not kept on disk unseen.
        let uploads = problem(["coordinator.storage.s3.uploads=s3"])
        #expect(uploads?.key == "coordinator.storage.s3.uploads")
        #expect(uploads?.problem.contains("kind: s3") == true)
    }

    @Test func uploadsStayLocalUnlessAskedForTheBucket() throws {
        let secret = "coordinator.storage.s3.secret_access_key=s"
        #expect(try load(Self.base + [secret])?.uploads == .local)
        #expect(try load(Self.base + [secret, "coordinator.storage.s3.uploads=s3"])?.uploads == .s3)
    }
}
