import Foundation
import FrameTestSupport
import Testing

/// The coordinator process and its JWT secret: a short one stops start-up, a generated one is kept.
@Suite(.serialized, .timeLimit(.minutes(3))) struct HTTPSecretTests {
    @Test func aShortJWTSecretStopsStartUp() throws {
        let r = try runCommand(Binaries.url("frameflow-coordinator"), ["--set", "coordinator.jwt_secret=short"])
        #expect(r.status == 2)
        #expect(r.output.contains("coordinator.jwt_secret") && r.output.contains("32 bytes"), "\(r.output)")
    }

    /// Without `jwt_secret` a generated secret is written next to the uploads (mode 0600) and read
    /// back on restart, so an access token from before the restart still works after it.
    @Test func aGeneratedSecretKeepsTokensAcrossARestart() async throws {
        let cluster = try LocalCluster()
        defer { cluster.stop() }
        try cluster.startCoordinator()
        try await cluster.waitUntilReady()
        let api = try CurlAPI.login(port: cluster.httpPort, email: "restart@example.com")
        let secret = cluster.dir.appendingPathComponent("data/jwt_secret")
        let mode = try FileManager.default.attributesOfItem(atPath: secret.path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        let before = try String(contentsOf: secret, encoding: .utf8)

        cluster.coordinator?.signal(SIGTERM)
        _ = await cluster.coordinator?.waitForExit(timeout: 20)
        try cluster.startCoordinator(log: "coordinator-2.log")
        try await cluster.waitUntilReady()
        #expect(try String(contentsOf: secret, encoding: .utf8) == before)
        let me = try CurlAPI.call(["http://127.0.0.1:\(cluster.httpPort)/auth/me"] + api.auth)
        #expect(me.status == 200, "\(me.body)\n\(cluster.logs)")
    }
}
