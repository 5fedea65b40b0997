import FrameClient
import Foundation
import FrameTestSupport
import Testing

/// The public HTTP API driven with curl, as a user would, for the fault tests.
struct CurlAPI {
    let base: String
    let token: String

    struct Answer {
        var status: Int
        var body: String
    }

    /// Runs curl and returns the HTTP status and body (never throws on an HTTP error status).
    static func call(_ args: [String]) throws -> Answer {
        let r = try runCommand(URL(fileURLWithPath: "/usr/bin/curl"), ["-sS", "-w", "\n%{http_code}"] + args)
        let lines = r.output.split(separator: "\n", omittingEmptySubsequences: false)
        // A server may answer before it has read the whole body and close (curl then reports a
        // send failure): the answer still counts when a status arrived.
        guard let code = lines.last.flatMap({ Int($0) }), code > 0 else {
            throw LocalCluster.Failure(description: "curl \(args) exited \(r.status): \(r.output)")
        }
        return Answer(status: code, body: lines.dropLast().joined(separator: "\n"))
    }

    /// Runs curl and returns the body; an HTTP error status or a failed transfer throws with curl's output.
    static func body(_ args: [String]) throws -> String {
        let r = try runCommand(URL(fileURLWithPath: "/usr/bin/curl"), ["-sS", "--fail-with-body"] + args)
        guard r.status == 0 else { throw LocalCluster.Failure(description: "curl \(args): \(r.output)") }
        return r.output
    }

    /// The job id of an upload's answer, lower-case as in the storage folders.
    static func jobID(_ answer: Answer) -> String? { field(answer.body, "id")?.lowercased() }

    static func field(_ json: String, _ name: String) -> String? {
        guard let data = json.data(using: .utf8),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
        return object[name].map { "\($0)" }
    }

    /// Registers (if needed) and logs in a user on the coordinator at `port`.
    static func login(port: Int, email: String = "faults@example.com") throws -> CurlAPI {
        let base = "http://127.0.0.1:\(port)"
        let body = #"{"email":"\#(email)","password":"Fault-Injection-1"}"#
        _ = try call(["-X", "POST", "\(base)/auth/register", "-H", "Content-Type: application/json", "-d", body])
        let login = try call(["-X", "POST", "\(base)/auth/login", "-H", "Content-Type: application/json", "-d", body])
        guard login.status == 200, let token = field(login.body, "accessToken") else {
            throw LocalCluster.Failure(description: "login failed: \(login.status) \(login.body)")
        }
        return CurlAPI(base: base, token: token)
    }

    var auth: [String] { ["-H", "Authorization: Bearer \(token)"] }

    /// POST /videos; returns the answer (201 with the job id, or an error).
    func upload(_ file: URL, fps: String, extra: [String] = []) throws -> Answer {
        try Self.call(["-X", "POST", "\(base)/videos"] + auth + extra + ["-F", "file=@\(file.path)", "-F", "fps=\(fps)"])
    }

    func status(_ id: String) throws -> String {
        Self.field(try Self.call(["\(base)/videos/\(id)"] + auth).body, "status") ?? ""
    }

    /// Polls until the job is finished; returns its last status.
    func waitUntilFinished(_ id: String, timeout: TimeInterval = 180) async throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        var status = ""
        while Date() < deadline {
            status = (try? self.status(id)) ?? ""
            if ["COMPLETED", "FAILED", "CANCELLED"].contains(status) { return status }
            try await Task.sleep(for: .milliseconds(250))
        }
        return status
    }

    /// GET /videos/{id}/download; follows a redirect (with `storage.kind: s3`, a presigned URL of the store).
    func download(_ id: String, to zip: URL) throws {
        let r = try Self.call(["-L", "-o", zip.path, "\(base)/videos/\(id)/download"] + auth)
        guard r.status == 200 else { throw LocalCluster.Failure(description: "download \(id): \(r.status)") }
    }
}

enum FaultChecks {
    /// Two coordinators on `cluster`'s database: A on the cluster's own ports, B on fresh ones,
    /// each started with its settings and ready, with the ids of their liveness rows.
    struct TwoCoordinators {
        var a, b: ChildProcess
        var idA, idB: String
        var httpA, clusterA, httpB, clusterB: Int
        /// B's admin API (node listings).
        var adminB: AdminClient
    }

    static func startTwoCoordinators(
        _ cluster: LocalCluster, settingsA: [String], settingsB: [String]
    ) async throws -> TwoCoordinators {
        let (httpA, clusterA) = (cluster.httpPort, cluster.clusterPort)
        let (httpB, clusterB) = (freePort(), freePort())
        try cluster.startCoordinator(extra: settingsA, log: "coordinator-a.log")
        let a = try #require(cluster.coordinator)
        try await cluster.waitUntilReady()
        try cluster.startCoordinator(extra: settingsB, log: "coordinator-b.log", httpPort: httpB, clusterPort: clusterB)
        let b = try #require(cluster.coordinator)
        let adminB = AdminClient(baseURL: URL(string: "http://127.0.0.1:\(httpB)")!, token: cluster.adminToken)
        try await eventually(60, "coordinator B HTTP") { (try? await adminB.nodes()) != nil }
        let idA = try psql(cluster.databaseURL, "SELECT id FROM coordinators WHERE http_address = '127.0.0.1:\(httpA)'")
        let idB = try psql(cluster.databaseURL, "SELECT id FROM coordinators WHERE http_address = '127.0.0.1:\(httpB)'")
        #expect(!idA.isEmpty && !idB.isEmpty && idA != idB, "liveness rows: A '\(idA)', B '\(idB)'")
        return TwoCoordinators(a: a, b: b, idA: idA, idB: idB, httpA: httpA, clusterA: clusterA, httpB: httpB, clusterB: clusterB, adminB: adminB)
    }

    /// What the coordinator-kill tests record at the SIGKILL.
    struct CoordinatorKill {
        var killedAt: Date
        /// Segments leased through the killed coordinator, done, and in all, at the kill.
        var heldViaKilled, doneAtKill, total: String
    }

    /// Waits until segments are done and `nodeName` holds a lease through coordinator `id`,
    /// then SIGKILLs that coordinator and that node together (the node's lease can then only
    /// come back by the survivor's take-over, well before the reaper's lease TTL).
    static func killMidJob(
        databaseURL: String, coordinator: ChildProcess, id: String, node: ChildProcess?, nodeName: String,
        logs: () -> String
    ) async throws -> CoordinatorKill {
        // The node is frozen (SIGSTOP) while its lease is checked: on a quiet machine a segment
        // takes less than the query, so a lease seen held could be done by the kill otherwise.
        try await eventually(120, "segments done and leases on the coordinator to kill\n\(logs())") {
            node?.signal(SIGSTOP)
            let done = Int(try psql(databaseURL, "SELECT count(*) FROM segments WHERE state = 'done'")) ?? 0
            let held = Int(try psql(databaseURL, """
                SELECT count(*) FROM segments WHERE state = 'leased' AND coordinator = '\(id)' AND node = '\(nodeName)'
                """)) ?? 0
            if done >= 1 && held >= 1 { return true }
            node?.signal(SIGCONT)
            return false
        }
        coordinator.signal(SIGKILL)
        let killedAt = Date()
        node?.signal(SIGKILL)
        // Read after the kill: nothing renews or moves the dead coordinator's leases before the
        // survivor's take-over, at least half a heartbeat timeout later. (SIGKILL ends the
        // frozen node too.)
        let held = try psql(databaseURL, "SELECT count(*) FROM segments WHERE state = 'leased' AND coordinator = '\(id)'")
        let done = try psql(databaseURL, "SELECT count(*) FROM segments WHERE state = 'done'")
        let total = try psql(databaseURL, "SELECT count(*) FROM segments")
        _ = await coordinator.waitForExit(timeout: 10)
        return CoordinatorKill(killedAt: killedAt, heldViaKilled: held, doneAtKill: done, total: total)
    }

    /// Seconds from the kill until no lease is held through the dead coordinator `dead` any more
    /// (resumed on the survivor by its node, or requeued by the survivor), and until the dead
    /// one is buried (only `survivor`'s liveness row is left).
    static func awaitTakeover(
        databaseURL: String, dead: String, survivor: String, since killedAt: Date, logs: () -> String
    ) async throws -> (leasesBack: TimeInterval, buried: TimeInterval) {
        try await eventually(60, "the dead coordinator's leases taken back\n\(logs())") {
            try psql(databaseURL, "SELECT count(*) FROM segments WHERE state = 'leased' AND coordinator = '\(dead)'") == "0"
        }
        let leasesBack = Date().timeIntervalSince(killedAt)
        try await eventually(30, "the dead coordinator's liveness row taken over\n\(logs())") {
            try psql(databaseURL, "SELECT string_agg(id, ',') FROM coordinators") == survivor
        }
        return (leasesBack, Date().timeIntervalSince(killedAt))
    }

    /// Every one of the `total` segments was accepted exactly once, and never from a lease that had
    /// been taken back (requeued or expired) unless its node resumed it since under the same epoch.
    static func expectEachSegmentAcceptedOnce(
        databaseURL: String, total: String, sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let done = try psql(databaseURL, "SELECT count(*) FROM segments WHERE state = 'done'")
        let doneEvents = try psql(databaseURL, "SELECT count(*) FROM job_events WHERE kind = 'segment_done'")
        #expect(done == total && doneEvents == total, "done \(done), done events \(doneEvents), segments \(total)",
                sourceLocation: sourceLocation)
        let afterTakeBack = try psql(databaseURL, """
            SELECT count(*) FROM job_events d JOIN job_events r
              ON r.job_id = d.job_id AND r.segment = d.segment AND r.epoch = d.epoch
             AND r.kind IN ('lease_requeued', 'lease_expired') AND r.id < d.id
             AND NOT EXISTS (SELECT 1 FROM job_events s WHERE s.job_id = d.job_id AND s.segment = d.segment
                             AND s.epoch = d.epoch AND s.kind = 'lease_resumed' AND s.id > r.id AND s.id < d.id)
            WHERE d.kind = 'segment_done'
            """)
        #expect(afterTakeBack == "0", "\(afterTakeBack) segments accepted from a lease taken back and not resumed",
                sourceLocation: sourceLocation)
    }

    /// The ZIP the cluster produced for `id` holds exactly the entries `frameflow extract` makes for the same file
    /// and options (the fault-free reference).
    static func expectSameZipAsExtract(
        _ api: CurlAPI, _ id: String, video: URL, fps: String, dir: URL, sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let zip = dir.appendingPathComponent("got-\(id).zip")
        try api.download(id, to: zip)
        let reference = dir.appendingPathComponent("reference-\(video.lastPathComponent)-\(fps).zip")
        if !FileManager.default.fileExists(atPath: reference.path) {
            let extract = try runCommand(Binaries.url("frameflow"), ["extract", video.path, "--fps", fps, "--output", reference.path])
            #expect(extract.status == 0, "\(extract.output)", sourceLocation: sourceLocation)
        }
        let ours = try Fixtures.zipEntries(zip), theirs = try Fixtures.zipEntries(reference)
        #expect(!theirs.isEmpty, sourceLocation: sourceLocation)
        #expect(ours.keys.sorted() == theirs.keys.sorted(), sourceLocation: sourceLocation)
        let differing = theirs.keys.filter { $0.hasPrefix("frame_") && ours[$0] != theirs[$0] }
        #expect(differing.isEmpty, "frames differ: \(differing.sorted().prefix(5))", sourceLocation: sourceLocation)
    }

    /// Runs SQL against `databaseURL` with psql and returns its unaligned output.
    static func psql(_ databaseURL: String, _ sql: String) throws -> String {
        let r = try runCommand(URL(fileURLWithPath: "/usr/bin/psql"), [databaseURL, "-XAtqc", sql])
        guard r.status == 0 else { throw LocalCluster.Failure(description: "psql: \(r.output)") }
        return r.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func seconds(since start: Date) -> String { String(format: "%.2f", Date().timeIntervalSince(start)) }

    /// Job folders (named by id) under a storage root.
    static func entries(_ dir: URL) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).sorted()
    }

    /// The repository root (for scripts/).
    static var repository: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// Runs a bash snippet with scripts/lib/postgres.sh sourced.
    @discardableResult
    static func postgres(_ script: String) throws -> String {
        let lib = repository.appendingPathComponent("scripts/lib/postgres.sh").path
        let r = try runCommand(URL(fileURLWithPath: "/bin/bash"), ["-c", "source '\(lib)' && \(script)"])
        guard r.status == 0 else { throw LocalCluster.Failure(description: "postgres.sh: \(script): \(r.output)") }
        return r.output
    }

    static var isRoot: Bool { getuid() == 0 }

    /// A file of `bytes` random bytes (not media: for uploads that must never reach the probe).
    static func randomFile(_ url: URL, bytes: Int) throws {
        let random = try FileHandle(forReadingFrom: URL(fileURLWithPath: "/dev/urandom"))
        defer { try? random.close() }
        try random.read(upToCount: bytes)!.write(to: url)
    }
}
