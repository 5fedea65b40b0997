import Foundation
import FrameTestSupport
import Testing

/// `frameflow-sim` against a real coordinator: simulated nodes that drop their connections now and
/// then (the disconnect model) still see a job through. Every sample's frame reaches the ZIP, and
/// the drops were really simulated: each is a closed connection the agent recovers from (it
/// reconnects and resumes its leases), not a restarted node. (The failure model is tested in
/// SimulatedLeaseRunnerTests: here failures would blocklist the three nodes, a policy of its own.)
@Suite(.serialized, .timeLimit(.minutes(5))) struct SimulatorProcessTests {
    @Test func simulatedNodesThatDropTheirConnectionsStillFinishAJob() async throws {
        let cluster = try LocalCluster()
        defer { cluster.stop() }
        // 30 segments, one per 2 s GOP.
        try cluster.startCoordinator(extra: ["--set", "coordinator.segment_seconds=1"])
        try await cluster.waitUntilReady()
        let sim = try ChildProcess(Binaries.url("frameflow-sim"), [
            "--config", cluster.dir.appendingPathComponent("cluster.yaml").path, "--certs", cluster.certs.path,
            "--nodes", "3", "--slots", "2", "--sample-ms", "40", "--frame-bytes", "2000", "--source-size", "320x240",
            "--disconnect-rate", "0.5", "--report", "1",
            "--set", "node.coordinator=127.0.0.1:\(cluster.clusterPort)",
            "--set", "node.tls.ca=\(cluster.certs.appendingPathComponent("ca.pem").path)",
            "--set", "node.reconnect_max_backoff=1s",
        ], log: cluster.dir.appendingPathComponent("sim.log"))
        defer { sim.terminate() }
        try await eventually(60, "three simulated nodes online\n\(sim.output.suffix(2000))") {
            let nodes = (try? await cluster.admin.nodes()) ?? []
            return nodes.filter { $0.name.hasPrefix("sim-") && $0.state == "online" }.count == 3
        }

        let user = try CurlAPI.login(port: cluster.httpPort, email: "sim@example.com")
        let video = try Fixtures.video(seconds: 60, name: "sim.mp4")
        let created = try user.upload(video, fps: "2")
        let id = try #require(CurlAPI.jobID(created), "\(created)")
        let status = try await user.waitUntilFinished(id)
        #expect(status == "COMPLETED", "\(cluster.logs)\n--- sim\n\(sim.output.suffix(3000))")
        let zip = cluster.dir.appendingPathComponent("sim.zip")
        try user.download(id, to: zip)
        #expect(try Fixtures.zipEntries(zip).keys.filter { $0.hasPrefix("frame_") }.count == 120)

        // Drops happened, and the nodes came back after each. The simulator reports once a second,
        // so its line may not count the last SEGMENT_DONEs yet: wait for one that does.
        try await eventually(30, "a simulated drop after which all three are online again, and a report counting every segment done") {
            let nodes = (try? await cluster.admin.nodes()) ?? []
            let report = Self.lastReport(sim.output)
            return report?["disconnects"].map { $0 > 0 } == true && report?["done", default: 0] ?? 0 >= 30
                && nodes.filter { $0.name.hasPrefix("sim-") && $0.state == "online" }.count == 3
        }
        // Each drop was a new session on the coordinator's side: more sessions than nodes.
        let sessions = (cluster.coordinator?.output ?? "").components(separatedBy: "node connected").count - 1
        #expect(sessions > 3, "\(sessions) sessions for 3 nodes")
    }

    /// The simulator's last JSON progress line (`--report`), as numbers.
    static func lastReport(_ output: String) -> [String: Int]? {
        for line in output.split(separator: "\n").reversed() where line.hasPrefix("{\"connected\"") {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Int] else { continue }
            return object
        }
        return nil
    }
}
