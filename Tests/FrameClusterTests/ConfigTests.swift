import Foundation
import Testing
@testable import FrameCluster
import FrameCore

@Suite struct ConfigTests {
    func write(_ yaml: String) throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ff-config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let url = dir.appendingPathComponent("cluster.yaml")
        try yaml.write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    @Test func repositoryClusterYamlLoads() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("cluster.yaml")
        let config = try ClusterConfig.load(file: url, environment: [:])
        #expect(config.coordinator.clusterListen.port == 7070)
        #expect(config.coordinator.heartbeatInterval == .seconds(1))
        #expect(config.coordinator.heartbeatTimeout == .seconds(3))
        #expect(config.coordinator.maxUploadBytes == 500_000_000)
        #expect(config.coordinator.allowedExtensions == ["mp4", "avi", "mov", "mkv", "wmv", "flv", "webm"])
        #expect(config.coordinator.maxAttempts == 3)
    }

    @Test func defaultsWithoutFile() throws {
        let config = try ClusterConfig.load(file: nil, environment: [:])
        #expect(config.coordinator.httpListen == HostPort(host: "127.0.0.1", port: 8080))
        #expect(config.coordinator.leaseTTL == .seconds(30))
        #expect(config.coordinator.defaultRate == Rational(1, 1))
        #expect(config.node.slots == ProcessInfo.processInfo.activeProcessorCount)
    }

    @Test func fileValuesAndRelativePaths() throws {
        let url = try write("""
        coordinator:
          heartbeat_interval: 500ms
          heartbeat_timeout: 2s
          upload:
            max_bytes: 5GB
            allowed_extensions: [mp4, .MKV]
          tls:
            ca: certs/ca.pem
        node:
          slots: 4
          labels:
            gpu: "yes"
            zone: a
        """)
        let config = try ClusterConfig.load(file: url, environment: [:])
        #expect(config.coordinator.heartbeatInterval == .milliseconds(500))
        #expect(config.coordinator.maxUploadBytes == 5_000_000_000)
        #expect(config.coordinator.allowedExtensions == ["mp4", "mkv"])
        #expect(config.coordinator.tls.ca.path == url.deletingLastPathComponent().appendingPathComponent("certs/ca.pem").path)
        #expect(config.node.slots == 4)
        #expect(config.node.labels == ["gpu": "yes", "zone": "a"])
    }

    @Test func environmentThenFlagsOverride() throws {
        let url = try write("coordinator:\n  max_attempts: 4\n")
        let env = ["FRAMEFLOW_COORDINATOR_MAX_ATTEMPTS": "6", "FRAMEFLOW_NODE_SLOTS": "3"]
        let c1 = try ClusterConfig.load(file: url, environment: env)
        #expect(c1.coordinator.maxAttempts == 6)
        #expect(c1.node.slots == 3)
        let c2 = try ClusterConfig.load(file: url, environment: env, overrides: ["coordinator.max_attempts=7"])
        #expect(c2.coordinator.maxAttempts == 7)
    }

    @Test func unknownKeyIsNamed() throws {
        let url = try write("coordinator:\n  heartbeat_intervall: 1s\n")
        let error = #expect(throws: ConfigError.self) { try ClusterConfig.load(file: url, environment: [:]) }
        #expect(error?.key == "coordinator.heartbeat_intervall")
        #expect(error?.problem == "unknown key")
        #expect(error?.source.contains("line 2") == true)
    }

    @Test func unknownSectionIsNamed() throws {
        let url = try write("coordinatr:\n  x: 1\n")
        let error = #expect(throws: ConfigError.self) { try ClusterConfig.load(file: url, environment: [:]) }
        #expect(error?.key == "coordinatr")
    }

    @Test func wrongTypeIsNamed() throws {
        let url = try write("node:\n  slots: many\n")
        let error = #expect(throws: ConfigError.self) { try ClusterConfig.load(file: url, environment: [:]) }
        #expect(error?.key == "node.slots")
        #expect(error?.problem.contains("integer") == true)
    }

    @Test func timeoutMustExceedInterval() throws {
        let url = try write("coordinator:\n  heartbeat_interval: 3s\n  heartbeat_timeout: 3s\n")
        let error = #expect(throws: ConfigError.self) { try ClusterConfig.load(file: url, environment: [:]) }
        #expect(error?.key == "coordinator.heartbeat_timeout")
    }

    @Test func negativeSlotsRejected() throws {
        let error = #expect(throws: ConfigError.self) {
            try ClusterConfig.load(file: nil, environment: [:], overrides: ["node.slots=-1"])
        }
        #expect(error?.key == "node.slots")
        #expect(error?.source == "--set node.slots")
    }

    @Test func badEnvironmentValueNamesTheVariable() throws {
        let error = #expect(throws: ConfigError.self) {
            try ClusterConfig.load(file: nil, environment: ["FRAMEFLOW_COORDINATOR_LEASE_TTL": "soon"])
        }
        #expect(error?.key == "coordinator.lease_ttl")
        #expect(error?.source == "environment variable FRAMEFLOW_COORDINATOR_LEASE_TTL")
    }

    @Test func unknownOverrideKeyRejected() throws {
        let error = #expect(throws: ConfigError.self) {
            try ClusterConfig.load(file: nil, environment: [:], overrides: ["node.slotz=2"])
        }
        #expect(error?.key == "node.slotz")
    }

    @Test func nodeNeedsItsOwnCertificate() throws {
        let config = try ClusterConfig.load(file: nil, environment: [:])
        let error = #expect(throws: ConfigError.self) { try config.validatedForNode() }
        #expect(error?.key == "node.tls.cert")
    }

    @Test func parsesDurationsAndSizes() {
        #expect(ConfigValue.parseDuration("250ms") == .milliseconds(250))
        #expect(ConfigValue.parseDuration("2m") == .seconds(120))
        #expect(ConfigValue.parseDuration("1.5") == .milliseconds(1500))
        #expect(ConfigValue.parseDuration("fast") == nil)
        #expect(ConfigValue.parseSize("500MB") == 500_000_000)
        #expect(ConfigValue.parseSize("1GiB") == 1 << 30)
        #expect(ConfigValue.parseSize("12") == 12)
        #expect(ConfigValue.parseSize("-5MB") == nil)
    }

    @Test func parsesHostPort() {
        #expect(HostPort(parsing: "0.0.0.0:7070") == HostPort(host: "0.0.0.0", port: 7070))
        #expect(HostPort(parsing: "[::1]:80") == HostPort(host: "::1", port: 80))
        #expect(HostPort(parsing: "localhost") == nil)
        #expect(HostPort(parsing: "host:99999") == nil)
    }
}
