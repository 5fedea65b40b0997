import Foundation
import FrameTestSupport
import Testing

/// `frameflow` as a user's client, run as a process against a real cluster: login (0600 token
/// file), an upload killed and re-run (it resumes), --wait --output, videos list/show/cancel/
/// download, watch, --json, and the documented exit codes.
@Suite(.serialized, .timeLimit(.minutes(6))) struct CLITests {
    struct Run { var status: Int32; var output: String }

    @Test func userCommandsAgainstARealCluster() async throws {
        let cluster = try LocalCluster()
        defer { cluster.stop() }
        try cluster.startCoordinator(extra: ["--set", "coordinator.segment_seconds=5"])
        try await cluster.waitUntilReady()
        try cluster.startNode("cli-a")
        try await eventually(30, "node online\n\(cluster.logs)") { await cluster.nodeState("cli-a") == "online" }
        let api = try CurlAPI.login(port: cluster.httpPort, email: "cli@example.com")
        let config = cluster.dir.appendingPathComponent("config")
        let env = ["FRAMEFLOW_CONFIG_DIR": config.path, "FRAMEFLOW_URL": api.base]
        func frameflow(_ args: [String], environment: [String: String] = env) throws -> Run {
            let r = try runCommand(Binaries.url("frameflow"), args, environment: environment)
            return Run(status: r.status, output: r.output)
        }
        func object(_ text: String) -> [String: Any]? {
            // --json prints one document on stdout; progress lines (stderr) come before it.
            guard let start = text.firstIndex(of: "{"), let data = String(text[start...]).data(using: .utf8) else { return nil }
            return try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        }

        // Not logged in: exit 2.
        #expect(try frameflow(["videos", "list"]).status == 2)
        let wrong = try frameflow(["login", "--email", "cli@example.com"], environment: env.merging(["FRAMEFLOW_PASSWORD": "nope"]) { $1 })
        #expect(wrong.status == 2, "\(wrong.output)")
        let login = try frameflow(["login", "--email", "cli@example.com"],
                                  environment: env.merging(["FRAMEFLOW_PASSWORD": "Fault-Injection-1"]) { $1 })
        #expect(login.status == 0, "\(login.output)")
        let credentials = config.appendingPathComponent("credentials.json")
        let mode = try #require(try FileManager.default.attributesOfItem(atPath: credentials.path)[.posixPermissions] as? Int)
        #expect(mode & 0o777 == 0o600, "credentials mode \(String(mode, radix: 8))")
        let list = try frameflow(["videos", "list", "--json"])
        #expect(list.status == 0)
        #expect((object(list.output)?["items"] as? [Any])?.isEmpty == true, "\(list.output)")

        // An upload killed at a fifth, then run again: it resumes and goes on to the ZIP.
        let video = try Fixtures.video(seconds: 20, name: "cli.mp4", size: "640x480")
        let size = try #require(try FileManager.default.attributesOfItem(atPath: video.path)[.size] as? Int)
        let rate = max(200_000, size / 8)
        let first = try ChildProcess(Binaries.url("frameflow"), ["upload", video.path, "--fps", "1", "--limit-rate", "\(rate)"],
                                     log: cluster.dir.appendingPathComponent("cli-upload-1.log"), environment: env)
        try await eventually(60, "a fifth uploaded\n\(first.output)") {
            first.output.split(separator: "\n").contains { line in
                guard let open = line.lastIndex(of: "("), let pct = Int(line[line.index(after: open)...].prefix { $0.isNumber }) else {
                    return false
                }
                return line.contains("uploaded") && pct >= 20
            }
        }
        first.signal(SIGKILL)
        _ = await first.waitForExit(timeout: 10)
        let output = cluster.dir.appendingPathComponent("zips")
        let resumed = try frameflow(["upload", video.path, "--fps", "1", "--wait", "--output", output.path, "--json"])
        #expect(resumed.status == 0, "\(resumed.output)")
        let item = try #require((object(resumed.output)?["items"] as? [[String: Any]])?.first, "\(resumed.output)")
        let resumedFrom = item["resumedFrom"] as? Int ?? 0
        #expect(resumedFrom > 0 && resumedFrom < size, "resumed from \(resumedFrom) of \(size)\n\(resumed.output)")
        #expect(resumed.output.contains("resuming at"), "plain progress lines say where it resumed\n\(resumed.output)")
        #expect(item["status"] as? String == "COMPLETED")
        let id = try #require(item["videoId"] as? String)
        #expect(id == id.lowercased())
        let zip = output.appendingPathComponent(video.deletingPathExtension().lastPathComponent + ".zip")
        #expect(item["zip"] as? String == zip.path)
        let reference = cluster.dir.appendingPathComponent("cli-reference.zip")
        let extract = try runCommand(Binaries.url("frameflow"), ["extract", video.path, "--fps", "1", "--output", reference.path])
        #expect(extract.status == 0)
        let ours = try Fixtures.zipEntries(zip), theirs = try Fixtures.zipEntries(reference)
        #expect(ours.keys.sorted() == theirs.keys.sorted())
        #expect(theirs.keys.filter { $0.hasPrefix("frame_") }.allSatisfy { ours[$0] == theirs[$0] })
        #expect(theirs.keys.contains { $0.hasPrefix("frame_") })

        // show / download / cancel / watch.
        let show = try frameflow(["videos", "show", id, "--json"])
        #expect(object(show.output)?["status"] as? String == "COMPLETED")
        #expect(try frameflow(["videos", "show", id]).output.contains("status:   COMPLETED"))
        let copy = cluster.dir.appendingPathComponent("copy.zip")
        #expect(try frameflow(["videos", "download", id, "-o", copy.path]).status == 0)
        #expect(try Data(contentsOf: copy) == Data(contentsOf: zip))
        #expect(try frameflow(["videos", "cancel", id]).status == 4, "cancelling a COMPLETED video is refused")
        #expect(try frameflow(["videos", "show", UUID().uuidString.lowercased()]).status == 3)
        let watched = try frameflow(["watch", id])
        #expect(watched.status == 0)
        #expect(watched.output.contains("COMPLETED"))

        // A file that is not a video: exit 4 with the media code; an extension the server refuses: 4.
        let notVideo = cluster.dir.appendingPathComponent("random.mp4")
        try FaultChecks.randomFile(notVideo, bytes: 100_000)
        let refused = try frameflow(["upload", notVideo.path])
        #expect(refused.status == 4, "\(refused.output)")
        #expect(refused.output.contains("NOT_MEDIA"))
        let text = cluster.dir.appendingPathComponent("notes.txt")
        try Data("hello".utf8).write(to: text)
        let badExtension = try frameflow(["upload", text.path, "--json"])
        #expect(badExtension.status == 4)
        #expect(badExtension.output.contains("UNSUPPORTED_EXTENSION"))
        #expect(try frameflow(["upload", video.path, "--quality", "99"]).status == 64, "usage errors are 64")

        // Logout revokes the refresh token and forgets the login.
        #expect(try frameflow(["logout"]).status == 0)
        #expect(!FileManager.default.fileExists(atPath: credentials.path))
        #expect(try frameflow(["videos", "list"]).status == 2)
    }
}
