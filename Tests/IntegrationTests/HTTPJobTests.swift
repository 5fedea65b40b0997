import Foundation
import FrameTestSupport
import Testing

/// A job through the public HTTP API against real processes: a coordinator
/// with PostgreSQL and two `frameflow-node`s. The ZIP must hold the same images
/// as `frameflow extract` on the same file.
@Suite(.serialized, .timeLimit(.minutes(5))) struct HTTPJobTests {
    @Test func uploadedVideoComesBackAsTheSameZipAsExtract() async throws {
        let cluster = try LocalCluster()
        defer { cluster.stop() }
        try cluster.startCoordinator(extra: ["--set", "coordinator.segment_seconds=5"])
        try await cluster.waitUntilReady()
        try cluster.startNode("http-a")
        try cluster.startNode("http-b")
        try await eventually(30, "both nodes online\n\(cluster.logs)") {
            let a = await cluster.nodeState("http-a"), b = await cluster.nodeState("http-b")
            return a == "online" && b == "online"
        }
        let video = try Fixtures.video(seconds: 60, name: "http.mp4")
        let user = try CurlAPI.login(port: cluster.httpPort, email: "it@example.com")
        let created = try user.upload(video, fps: "1")
        let id = try #require(CurlAPI.jobID(created), "\(created)")
        let status = try await user.waitUntilFinished(id)
        #expect(status == "COMPLETED", "\(cluster.logs)")

        let zip = cluster.dir.appendingPathComponent("download.zip")
        try user.download(id, to: zip)
        let reference = cluster.dir.appendingPathComponent("reference.zip")
        let extract = try runCommand(Binaries.url("frameflow"), ["extract", video.path, "--fps", "1", "--output", reference.path])
        #expect(extract.status == 0, "\(extract.output)")
        let ours = try Fixtures.zipEntries(zip), theirs = try Fixtures.zipEntries(reference)
        #expect(ours.keys.filter { $0.hasPrefix("frame_") }.count == 60)
        #expect(ours.keys.sorted() == theirs.keys.sorted())
        for name in theirs.keys where name.hasPrefix("frame_") { #expect(ours[name] == theirs[name], "\(name) differs") }
        // Both nodes worked on it.
        for node in ["http-a", "http-b"] {
            #expect(cluster.nodes[node]?.output.contains("segment finished") == true, "\(node) took no segment")
        }
    }
}
