import Foundation
import FrameTestSupport
import Testing

/// Resumable uploads with another implementation's client: PyPI's tuspy
/// (scripts/lib/tus-upload.py) against real coordinator and node processes. An upload is cut
/// off by killing the client and resumed by running it again; another by killing the
/// coordinator and restarting it. Each job's ZIP must equal `frameflow extract` on the file.
@Suite(.serialized, .timeLimit(.minutes(6))) struct TusInteropTests {
    /// Tokens must survive the coordinator's restart.
    static let settings = ["--set", "coordinator.segment_seconds=5", "--set", "coordinator.jwt_secret=tus-interop-secret-0123456789abcdef"]

    static var script: URL { FaultChecks.repository.appendingPathComponent("scripts/lib/tus-upload.py") }

    struct Event: Decodable { var event: String; var offset: Int?; var videoId: String?; var status: Int?; var body: String? }

    static func events(_ text: String) -> [Event] {
        text.split(separator: "\n").compactMap { try? JSONDecoder().decode(Event.self, from: Data($0.utf8)) }
    }

    static func arguments(_ api: CurlAPI, file: URL, store: URL, pause: Double, chunk: Int, extra: [String] = []) -> [String] {
        [script.path, "--endpoint", "\(api.base)/uploads", "--token", api.token, "--file", file.path, "--store", store.path,
         "--chunk-size", "\(chunk)", "--pause", "\(pause)", "--meta", "filename=\(file.lastPathComponent)", "--meta", "fps=1"]
            + extra
    }

    /// Starts the client, waits until the server has acknowledged at least `atLeast` bytes, and
    /// returns the running client.
    static func startUntil(_ atLeast: Int, _ args: [String], log: URL) async throws -> ChildProcess {
        let client = try ChildProcess(URL(fileURLWithPath: "/usr/bin/env"), ["python3"] + args, log: log)
        try await eventually(60, "tuspy acknowledged \(atLeast) bytes\n\(client.output)") {
            (events(client.output).compactMap(\.offset).max() ?? 0) >= atLeast
        }
        return client
    }

    /// Runs the client to the end and returns its events.
    static func finish(_ args: [String]) throws -> [Event] {
        let r = try runCommand(URL(fileURLWithPath: "/usr/bin/env"), ["python3"] + args)
        let events = events(r.output)
        #expect(r.status == 0, "tuspy failed: \(r.output)")
        return events
    }

    func startCluster() async throws -> LocalCluster {
        let cluster = try LocalCluster()
        try cluster.startCoordinator(extra: Self.settings)
        try await cluster.waitUntilReady()
        try cluster.startNode("tus-a")
        try cluster.startNode("tus-b")
        try await eventually(30, "nodes online\n\(cluster.logs)") {
            let a = await cluster.nodeState("tus-a"), b = await cluster.nodeState("tus-b")
            return a == "online" && b == "online"
        }
        return cluster
    }

    @Test func tuspyUploadKilledAndResumedGivesTheSameZipAsExtract() async throws {
        let cluster = try await startCluster()
        defer { cluster.stop() }
        let api = try CurlAPI.login(port: cluster.httpPort, email: "tus@example.com")
        let video = try Fixtures.video(seconds: 40, name: "tus.mp4", size: "640x480")
        let size = try #require(try FileManager.default.attributesOfItem(atPath: video.path)[.size] as? Int)
        let store = cluster.dir.appendingPathComponent("tus-urls.json")
        let args = Self.arguments(api, file: video, store: store, pause: 0.05, chunk: 64 * 1024, extra: ["--checksum"])

        // Killed with SIGKILL a third of the way in: no goodbye, the server keeps what it acknowledged.
        let first = try await Self.startUntil(size / 3, args, log: cluster.dir.appendingPathComponent("tuspy-1.log"))
        first.signal(SIGKILL)
        _ = await first.waitForExit(timeout: 10)
        let acknowledged = Self.events(first.output).compactMap(\.offset).max() ?? 0

        let events = try Self.finish(args)
        let start = try #require(events.first { $0.event == "start" }?.offset)
        #expect(start >= acknowledged, "resumed from \(start), but \(acknowledged) bytes had been acknowledged")
        #expect(start > 0 && start < size, "resumed from the server's offset, not from zero: \(start)")
        let id = try #require(events.last { $0.event == "done" }?.videoId, "\(events)")

        let status = try await api.waitUntilFinished(id)
        #expect(status == "COMPLETED", "\(cluster.logs)")
        try FaultChecks.expectSameZipAsExtract(api, id, video: video, fps: "1", dir: cluster.dir)

        // A file that is not a video is refused at its last byte with the code POST /videos gives.
        let text = cluster.dir.appendingPathComponent("notes.mp4")
        try FaultChecks.randomFile(text, bytes: 200_000)
        let refused = try runCommand(URL(fileURLWithPath: "/usr/bin/env"), ["python3"] + Self.arguments(
            api, file: text, store: cluster.dir.appendingPathComponent("tus-urls-2.json"), pause: 0, chunk: 1 << 20))
        let error = try #require(Self.events(refused.output).last { $0.event == "error" }, "\(refused.output)")
        let multipart = try api.upload(text, fps: "1")
        #expect(error.status == 422 && multipart.status == 422)
        #expect(error.body?.contains("\"code\":\"\(CurlAPI.field(multipart.body, "code") ?? "?")\"") == true,
                "tus: \(error.body ?? ""), multipart: \(multipart.body)")
    }

    /// The coordinator is SIGKILLed mid-upload and restarted: the client, run again, resumes from
    /// the offset the dead coordinator had made durable.
    @Test func coordinatorKilledMidUploadResumesFromTheDurableOffset() async throws {
        let cluster = try await startCluster()
        defer { cluster.stop() }
        let api = try CurlAPI.login(port: cluster.httpPort, email: "tus-crash@example.com")
        let video = try Fixtures.video(seconds: 30, name: "tus-crash.mp4", size: "640x480")
        let size = try #require(try FileManager.default.attributesOfItem(atPath: video.path)[.size] as? Int)
        let store = cluster.dir.appendingPathComponent("tus-crash-urls.json")
        let args = Self.arguments(api, file: video, store: store, pause: 0.05, chunk: 64 * 1024)

        let client = try await Self.startUntil(size / 2, args, log: cluster.dir.appendingPathComponent("tuspy-crash.log"))
        cluster.coordinator?.signal(SIGKILL)
        _ = await cluster.coordinator?.waitForExit(timeout: 10)
        let acknowledged = Self.events(client.output).compactMap(\.offset).max() ?? 0
        // The client fails against the dead coordinator.
        _ = await client.waitForExit(timeout: 30)
        client.signal(SIGKILL)

        try cluster.startCoordinator(extra: Self.settings, log: "coordinator-2.log")
        try await cluster.waitUntilReady()
        let durable = try FaultChecks.psql(cluster.databaseURL, "SELECT received FROM tus_uploads")
        #expect((Int(durable) ?? -1) >= acknowledged, "durable \(durable) < acknowledged \(acknowledged)")

        let events = try Self.finish(args)
        let start = try #require(events.first { $0.event == "start" }?.offset)
        #expect(start >= acknowledged && start > 0, "resumed from \(start) (acknowledged before the kill: \(acknowledged))")
        let id = try #require(events.last { $0.event == "done" }?.videoId, "\(events)")
        let status = try await api.waitUntilFinished(id)
        #expect(status == "COMPLETED", "\(cluster.logs)")
        try FaultChecks.expectSameZipAsExtract(api, id, video: video, fps: "1", dir: cluster.dir)
    }
}
