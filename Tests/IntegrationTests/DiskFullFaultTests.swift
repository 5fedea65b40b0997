import Foundation
import FrameTestSupport
import Testing

/// The coordinator's uploads directory is a 4 MB tmpfs: an upload larger than
/// the free space gets 507 STORAGE_FULL (problem+json), leaves nothing
/// half-written, and the next small upload is accepted and completed.
@Suite(.serialized, .timeLimit(.minutes(4))) struct DiskFullFaultTests {
    @Test func uploadLargerThanTheFreeSpaceGets507AndLeavesNothing() async throws {
        let cluster = try LocalCluster()
        defer { cluster.stop() }
        let uploads = cluster.dir.appendingPathComponent("data/uploads")
        try FileManager.default.createDirectory(at: uploads, withIntermediateDirectories: true)
        guard FaultChecks.isRoot else {
            print("skipped: the disk-full test mounts a tmpfs and needs root")
            try Test.cancel("the disk-full test mounts a tmpfs and needs root")
        }
        let mount = try runCommand(URL(fileURLWithPath: "/bin/mount"), ["-t", "tmpfs", "-o", "size=4m", "tmpfs", uploads.path])
        guard mount.status == 0 else {
            print("skipped: cannot mount a tmpfs: \(mount.output)")
            try Test.cancel("cannot mount a tmpfs: \(mount.output)")
        }
        defer {
            cluster.stop()
            _ = try? runCommand(URL(fileURLWithPath: "/bin/umount"), ["-l", uploads.path])
        }
        try cluster.startCoordinator(extra: ["--set", "coordinator.segment_seconds=2"])
        try await cluster.waitUntilReady()
        try cluster.startNode("disk-a", extra: ["--slots", "1"])
        try await eventually(30, "node online\n\(cluster.logs)") { await cluster.nodeState("disk-a") == "online" }
        let api = try CurlAPI.login(port: cluster.httpPort)

        // 6 MB into 4 MB: the disk fills in the middle of the body (small, because a debug build parses multipart slowly).
        let big = cluster.dir.appendingPathComponent("huge.mp4")
        try FaultChecks.randomFile(big, bytes: 6 << 20)
        let startedAt = Date()
        let full = try api.upload(big, fps: "1", extra: ["-D", cluster.dir.appendingPathComponent("full.headers").path])
        let headers = (try? String(contentsOf: cluster.dir.appendingPathComponent("full.headers"), encoding: .utf8)) ?? ""
        #expect(full.status == 507, "\(full.status): \(full.body)\n\(cluster.logs)")
        #expect(headers.lowercased().contains("content-type: application/problem+json"), "\(headers)")
        #expect(CurlAPI.field(full.body, "code") == "STORAGE_FULL", "\(full.body)")
        print("measured: disk-full upload-refused-507 \(FaultChecks.seconds(since: startedAt)) s after the upload began")
        // Nothing half-written: the uploads directory is empty and the space is back.
        try await eventually(10, "uploads directory empty") { FaultChecks.entries(uploads).isEmpty }
        let df = try runCommand(URL(fileURLWithPath: "/bin/df"), ["--output=used", "-B1", uploads.path])
        let used = Int(df.output.split(separator: "\n").last?.trimmingCharacters(in: .whitespaces) ?? "") ?? -1
        #expect(used >= 0 && used < 1 << 20, "tmpfs still holds \(used) bytes")

        // The coordinator carries on: a small upload is accepted and processed.
        let video = try Fixtures.video(seconds: 6, name: "after-full.mp4")
        let small = try api.upload(video, fps: "1")
        #expect(small.status == 201, "\(small.body)")
        let id = try #require(CurlAPI.jobID(small))
        #expect(try await api.waitUntilFinished(id) == "COMPLETED", "\(cluster.logs)")
        print("measured: disk-full next-upload-completed \(FaultChecks.seconds(since: startedAt)) s after the full upload began")
        try FaultChecks.expectSameZipAsExtract(api, id, video: video, fps: "1", dir: cluster.dir)
    }
}
