import Foundation
import FrameTestSupport
import Testing

/// `frameflow watch` as a process: it follows the server's push (`GET /events`), so a job that
/// finishes is reported at once even with a polling interval far longer than the test; against a
/// server without push it says so and polls.
@Suite(.serialized, .timeLimit(.minutes(4))) struct WatchCommandTests {
    @Test func watchFollowsTheServerPush() async throws {
        let cluster = try LocalCluster()
        defer { cluster.stop() }
        try cluster.startCoordinator(extra: ["--set", "coordinator.segment_seconds=2"])
        try await cluster.waitUntilReady()
        let api = try CurlAPI.login(port: cluster.httpPort, email: "watch@example.com")
        let env = ["FRAMEFLOW_CONFIG_DIR": cluster.dir.appendingPathComponent("config").path, "FRAMEFLOW_URL": api.base]
        let login = try runCommand(Binaries.url("frameflow"), ["login", "--email", "watch@example.com"],
                                   environment: env.merging(["FRAMEFLOW_PASSWORD": "Fault-Injection-1"]) { $1 })
        #expect(login.status == 0, "\(login.output)")
        // No node yet: the job stays QUEUED until the watcher is following it.
        let video = try Fixtures.video(seconds: 4, name: "watch.mp4")
        let upload = try runCommand(Binaries.url("frameflow"), ["upload", video.path, "--fps", "1", "--json"], environment: env)
        #expect(upload.status == 0, "\(upload.output)")
        let id = try #require(upload.output.firstMatch(of: /"videoId" *: *"([0-9a-f-]{36})"/)?.1, "\(upload.output)")

        // A poll every 10 minutes: only the push can bring the end within the test's wait.
        let watch = try ChildProcess(Binaries.url("frameflow"), ["watch", String(id), "--interval", "600"],
                                     log: cluster.dir.appendingPathComponent("watch.log"), environment: env)
        defer { watch.terminate() }
        try await eventually(20, "watch printed the queued job\n\(watch.output)") { watch.output.contains("QUEUED") }
        // Following a quiet stream costs no CPU (URLSession on Linux kept a core busy doing it).
        let before = try Self.cpuSeconds(watch.pid)
        try await Task.sleep(for: .seconds(5))
        let idle = try Self.cpuSeconds(watch.pid) - before
        #expect(idle < 1, "watch used \(idle) s of CPU in 5 s of waiting")
        try cluster.startNode("watch-a")
        let status = await watch.waitForExit(timeout: 90)
        #expect(status == 0, "watch ended (\(String(describing: status))) with\n\(watch.output)\n\(cluster.logs)")
        #expect(watch.output.contains("COMPLETED 100%"), "\(watch.output)")
        #expect(!watch.output.contains("polling"), "it followed the push\n\(watch.output)")
    }

    /// User and system CPU seconds process `pid` has used (/proc/PID/stat, fields 14 and 15).
    static func cpuSeconds(_ pid: Int32) throws -> Double {
        let stat = try String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)
        let fields = stat[stat.index(after: stat.lastIndex(of: ")")!)...].split(separator: " ")
        // After the name: field 3 (state) is fields[0], so utime (14) and stime (15) are [11] and [12].
        return Double(Int(fields[11])! + Int(fields[12])!) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// A server whose `GET /events` is 404 (an older coordinator): watch says it polls, and does.
    @Test func watchPollsWhenTheServerHasNoPush() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ff-watch-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let id = UUID().uuidString.lowercased()
        let script = dir.appendingPathComponent("server.py")
        try Self.pollOnlyServer.write(to: script, atomically: true, encoding: .utf8)
        let portFile = dir.appendingPathComponent("port")
        let server = try ChildProcess(URL(fileURLWithPath: "/usr/bin/env"), ["python3", script.path, portFile.path, id],
                                      log: dir.appendingPathComponent("server.log"))
        defer { server.terminate() }
        try await eventually(20, "the fake server is listening\n\(server.output)") {
            ((try? String(contentsOf: portFile, encoding: .utf8)) ?? "").hasSuffix("\n")
        }
        let port = try String(contentsOf: portFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let base = "http://127.0.0.1:\(port)"
        let config = dir.appendingPathComponent("config")
        try FileManager.default.createDirectory(at: config, withIntermediateDirectories: true)
        try #"{"url":"\#(base)","email":"poll@example.com","accessToken":"token"}"#
            .write(to: config.appendingPathComponent("credentials.json"), atomically: true, encoding: .utf8)
        let env = ["FRAMEFLOW_CONFIG_DIR": config.path, "FRAMEFLOW_URL": base]

        let watch = try runCommand(Binaries.url("frameflow"), ["watch", id, "--interval", "0.2"], environment: env)
        #expect(watch.status == 0, "\(watch.output)\n\(server.output)")
        #expect(watch.output.contains("server push unavailable"), "\(watch.output)")
        #expect(watch.output.contains("PROCESSING 50%"), "\(watch.output)")
        #expect(watch.output.contains("COMPLETED 100%"), "\(watch.output)")
        #expect(server.output.contains("GET /events 404"), "it asked for the push first\n\(server.output)")
    }

    /// Answers `GET /events` with 404 and `GET /videos/{id}` with PROCESSING twice, then COMPLETED.
    static let pollOnlyServer = #"""
        import http.server, json, sys
        port_file, video_id = sys.argv[1], sys.argv[2]
        reads = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def answer(self, status, body, kind="application/json"):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                global reads
                if self.path.startswith("/events"):
                    self.answer(404, {"type": "about:blank", "title": "Not Found", "status": 404, "code": "NOT_FOUND",
                                      "detail": "no such resource"}, "application/problem+json")
                elif self.path == "/videos/" + video_id:
                    reads += 1
                    done = reads > 2
                    self.answer(200, {"id": video_id, "originalFilename": "clip.mp4",
                                      "status": "COMPLETED" if done else "PROCESSING", "progress": 1 if done else 0.5,
                                      "frameCount": 4, "sizeBytes": 1000, "fps": "1", "format": "png",
                                      "createdAt": "2026-12-01T12:00:00Z"})
                else:
                    self.answer(404, {"code": "NOT_FOUND", "detail": self.path}, "application/problem+json")

            def log_message(self, format, *args):
                print(self.command, self.path.split("?")[0], args[1], flush=True)

        server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        with open(port_file, "w") as f:
            f.write(f"{server.server_address[1]}\n")
        server.serve_forever()
        """#
}
