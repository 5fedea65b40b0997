import Foundation
import Testing
@testable import FrameCluster
import FrameCore

/// The HTTP-side keys of `cluster.yaml`: limits, quotas, login throttling, idle timeout, the JWT secret.
@Suite struct HTTPConfigTests {
    @Test func defaultsAreSane() throws {
        let c = try ClusterConfig.load(file: nil, environment: [:]).coordinator
        #expect(c.maxRequestBytes == c.maxUploadBytes + 64 * 1024)
        #expect(c.maxFilesPerRequest == 10)
        #expect(c.maxStoredBytesPerUser == 50_000_000_000)
        #expect(c.maxActiveJobsPerUser == 100)
        #expect(c.loginAccountAttempts == 10 && c.loginAccountWindow == .seconds(600))
        #expect(c.loginAddressAttempts == 30 && c.loginAddressWindow == .seconds(60))
        #expect(c.bcryptConcurrency == ProcessInfo.processInfo.activeProcessorCount)
        #expect(c.httpIdleTimeout == .seconds(60))
        #expect(c.jwtSecretFile.lastPathComponent == "jwt_secret")
        #expect(c.jwtSecretFile.deletingLastPathComponent() == c.uploadsDirectory.deletingLastPathComponent())
    }

    @Test func overridesAndZeroMeaningNoLimit() throws {
        let c = try ClusterConfig.load(file: nil, environment: [:], overrides: [
            "coordinator.upload.max_bytes=1GB", "coordinator.upload.max_request_bytes=3GB", "coordinator.upload.max_files=3",
            "coordinator.quota.max_stored_bytes=0", "coordinator.quota.max_active_jobs=0", "coordinator.http.idle_timeout=0s",
            "coordinator.auth.bcrypt_concurrency=3", "coordinator.jwt_secret_file=/tmp/x/secret",
        ]).coordinator
        #expect(c.maxRequestBytes == 3_000_000_000)
        #expect(c.maxFilesPerRequest == 3)
        #expect(c.maxStoredBytesPerUser == nil && c.maxActiveJobsPerUser == nil)
        #expect(c.httpIdleTimeout == nil)
        #expect(c.bcryptConcurrency == 3)
        #expect(c.jwtSecretFile.path == "/tmp/x/secret")
    }

    @Test(arguments: [
        ("coordinator.jwt_secret=x", "coordinator.jwt_secret"),
        ("coordinator.jwt_secret=0123456789012345678901234567890", "coordinator.jwt_secret"),
        ("coordinator.upload.max_request_bytes=1MB", "coordinator.upload.max_request_bytes"),
        ("coordinator.upload.max_files=0", "coordinator.upload.max_files"),
        ("coordinator.quota.max_active_jobs=-1", "coordinator.quota.max_active_jobs"),
        ("coordinator.auth.account_attempts=0", "coordinator.auth.account_attempts"),
        ("coordinator.auth.address_window=0s", "coordinator.auth.address_window"),
        ("coordinator.auth.bcrypt_queue=-1", "coordinator.auth.bcrypt_queue"),
    ])
    func impossibleValuesStopStartUp(_ override: String, _ key: String) {
        do {
            _ = try ClusterConfig.load(file: nil, environment: [:], overrides: [override])
            Issue.record("\(override) was accepted")
        } catch {
            #expect(error.key == key)
            #expect(error.description.contains("--set"), "names where the value came from: \(error)")
        }
    }

    @Test func aLongEnoughSecretIsAccepted() throws {
        let secret = String(repeating: "s", count: 32)
        let c = try ClusterConfig.load(file: nil, environment: [:], overrides: ["coordinator.jwt_secret=\(secret)"]).coordinator
        #expect(c.jwtSecret == secret)
    }

    // MARK: The generated secret

    static func temporaryFile() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("ff-secret-\(UUID().uuidString)/data/jwt_secret")
    }

    @Test func aGeneratedSecretIsPrivateAndSurvivesARestart() throws {
        let url = Self.temporaryFile()
        defer { try? FileManager.default.removeItem(at: url.deletingLastPathComponent().deletingLastPathComponent()) }
        let first = try SecretFile.loadOrCreate(url)
        #expect(first.utf8.count >= 32)
        let mode = try FileManager.default.attributesOfItem(atPath: url.path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        #expect(try SecretFile.loadOrCreate(url) == first, "read back, not regenerated")
        let siblings = try FileManager.default.contentsOfDirectory(atPath: url.deletingLastPathComponent().path)
        #expect(siblings == ["jwt_secret"], "no temporary file left: \(siblings)")
    }

    @Test func aBadSecretFileStopsStartUp() throws {
        let url = Self.temporaryFile()
        defer { try? FileManager.default.removeItem(at: url.deletingLastPathComponent().deletingLastPathComponent()) }
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: url.path, contents: Data("short\n".utf8), attributes: [.posixPermissions: 0o600])
        #expect(throws: ConfigError.self) { _ = try SecretFile.loadOrCreate(url) }
        try Data(String(repeating: "k", count: 44).utf8).write(to: url)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: url.path)
        do {
            _ = try SecretFile.loadOrCreate(url)
            Issue.record("a world-readable secret was accepted")
        } catch {
            #expect(error.key == "coordinator.jwt_secret_file")
            #expect(error.problem.contains("chmod 600"))
        }
    }

    @Test func coordinatorsStartingAtOnceAgreeOnOneSecret() async throws {
        let url = Self.temporaryFile()
        defer { try? FileManager.default.removeItem(at: url.deletingLastPathComponent().deletingLastPathComponent()) }
        let secrets = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<8 { group.addTask { try SecretFile.loadOrCreate(url) } }
            return try await group.reduce(into: Set<String>()) { $0.insert($1) }
        }
        #expect(secrets.count == 1)
    }
}
