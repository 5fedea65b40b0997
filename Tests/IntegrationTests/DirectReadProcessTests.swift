import Foundation
import FrameObjectStore
import FrameTestSupport
import NIOCore
import Testing

/// `storage.s3.node_reads: direct` with real processes and the real S3-compatible store
/// (scripts/test starts OpenStack Swift + s3api): a node that speaks protocol version 2 gets
/// LEASE_URL and decodes the source from the store, giving the same ZIP as `frameflow extract`;
/// a node with `node.direct_reads: false` (version 1) gets plain LEASEs and reads through the
/// coordinator.
@Suite(.serialized, .timeLimit(.minutes(6))) struct DirectReadProcessTests {
    struct Job {
        let cluster: LocalCluster
        let user: CurlAPI
        let id: String
        let video: URL
        let client: S3Client
    }

    /// A coordinator on the store with direct node reads, and one uploaded video (no node yet,
    /// so nothing is leased before the test has arranged the source); nil without a store.
    func submit(_ stem: String) async throws -> Job? {
        guard let client = try await S3LiveStore.client("DirectReadProcessTests", stem: "direct-\(stem)", prefix: "ff/",
                                                        requestTimeout: .seconds(120)) else { return nil }
        let cluster = try LocalCluster()
        try cluster.startCoordinator(extra: ["--set", "coordinator.segment_seconds=5"]
            + S3LiveStore.coordinatorSettings(client.configuration) + ["--set", "coordinator.storage.s3.node_reads=direct"])
        try await cluster.waitUntilReady()
        let video = try Fixtures.video(seconds: 20, name: "direct-\(stem).mp4")
        let user = try CurlAPI.login(port: cluster.httpPort, email: "direct@example.com")
        let created = try user.upload(video, fps: "1")
        let id = try #require(CurlAPI.jobID(created), "\(created)")
        return Job(cluster: cluster, user: user, id: id, video: video, client: client)
    }

    /// The coordinator's copy of the upload (`uploads_dir/<job>/input.mp4`).
    func localUpload(_ job: Job) -> URL {
        job.cluster.dir.appendingPathComponent("data/uploads/\(job.id)/input.mp4")
    }

    /// Waits for the job's end, then checks its ZIP against `frameflow extract`.
    func expectSameZipAsExtract(_ job: Job) async throws {
        let status = try await job.user.waitUntilFinished(job.id)
        #expect(status == "COMPLETED", "\(job.cluster.logs)")
        guard status == "COMPLETED" else { return }
        let zip = job.cluster.dir.appendingPathComponent("download.zip")
        // With storage.kind s3 the download is a redirect to the store (followed).
        try job.user.download(job.id, to: zip)
        let reference = job.cluster.dir.appendingPathComponent("reference.zip")
        let extract = try runCommand(Binaries.url("frameflow"), ["extract", job.video.path, "--fps", "1", "--output", reference.path])
        #expect(extract.status == 0, "\(extract.output)")
        let ours = try Fixtures.zipEntries(zip), theirs = try Fixtures.zipEntries(reference)
        #expect(ours.keys.filter { $0.hasPrefix("frame_") }.count == 20)
        #expect(ours.keys.sorted() == theirs.keys.sorted())
        for name in theirs.keys where name.hasPrefix("frame_") { #expect(ours[name] == theirs[name], "\(name) differs") }
    }

    static func leasedFrom(_ log: String, _ source: String) -> Bool {
        log.contains("\"source\":\"\(source)") || log.contains("source=\(source)")
    }

    @Test func aDirectLeaseIsDecodedFromTheStoreAndGivesTheSameZipAsExtract() async throws {
        guard let job = try await submit("v2") else { return }
        defer { job.cluster.stop() }
        // The source goes where uploads land in the store (`<prefix>uploads/<job>/input.<ext>`,
        // ObjectKeys.upload), and the coordinator's own copy goes away: a READ through
        // the coordinator would now fail, so a COMPLETED job was read from the store.
        let bytes = try Data(contentsOf: localUpload(job))
        try await job.client.putObject("uploads/\(job.id)/input.mp4", body: ByteBuffer(bytes: bytes))
        try FileManager.default.moveItem(at: localUpload(job), to: localUpload(job).appendingPathExtension("moved"))
        try job.cluster.startNode("direct-a")
        try await expectSameZipAsExtract(job)
        let log = job.cluster.nodes["direct-a"]?.output ?? ""
        #expect(Self.leasedFrom(log, "direct"), "\(log.suffix(3000))")
        #expect(!Self.leasedFrom(log, "coordinator"))
        #expect(!log.contains("reading through the coordinator"), "no fallback to READ")
    }

    @Test func aNodeWithoutDirectReadsIsServedByRead() async throws {
        guard let job = try await submit("v1") else { return }
        defer { job.cluster.stop() }
        // Nothing in the store: only READ through the coordinator can serve this node.
        try job.cluster.startNode("direct-off", extra: ["--set", "node.direct_reads=false"])
        try await expectSameZipAsExtract(job)
        let log = job.cluster.nodes["direct-off"]?.output ?? ""
        #expect(Self.leasedFrom(log, "coordinator"), "\(log.suffix(3000))")
        #expect(!Self.leasedFrom(log, "direct"))
        #expect(log.contains("\"protocol\":\"1\"") || log.contains("protocol=1"), "the node announced version 1 only")
    }

    @Test func aDirectLeaseWhoseObjectIsMissingFallsBackToRead() async throws {
        guard let job = try await submit("fallback") else { return }
        defer { job.cluster.stop() }
        // A version-2 node gets LEASE_URL, the store answers 404: the node reads through the coordinator.
        try job.cluster.startNode("direct-b")
        try await expectSameZipAsExtract(job)
        let log = job.cluster.nodes["direct-b"]?.output ?? ""
        #expect(Self.leasedFrom(log, "direct"), "\(log.suffix(3000))")
        #expect(log.contains("reading through the coordinator") && log.contains("NOT_FOUND"), "\(log.suffix(3000))")
        #expect(!log.contains("X-Amz-Signature"), "the URL's signature is never logged")
    }
}
