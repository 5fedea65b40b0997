import FrameCore
import Foundation
@testable import FrameStore
import Synchronization
import Testing

/// Runs scripts/lib/postgres.sh functions in a child bash, for tests that
/// need a server of their own to stop and restart.
enum ClusterScript {
    static let path: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.appendingPathComponent("scripts/lib/postgres.sh").path
    }()

    /// Starts `source postgres.sh; <command>` without waiting.
    static func launch(_ command: String) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = ["-c", "source '\(path)' && \(command)"]
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        return p
    }

    /// Runs a command to completion without blocking a cooperative thread.
    static func run(_ command: String) async throws {
        let p = try launch(command)
        let deadline = ContinuousClock.now + .seconds(120)
        while p.isRunning {
            guard ContinuousClock.now < deadline else {
                p.terminate()
                throw StoreError.unavailable("`\(command)` did not finish within 120 s")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        guard p.terminationStatus == 0 else {
            throw StoreError.unavailable("`\(command)` exited with \(p.terminationStatus)")
        }
    }
}

@Suite("Database pool", .enabled(if: TestDatabase.enabled))
struct DatabasePoolTests {
    @Test("an unreachable server yields `unavailable` within the bounded wait, and ping is false")
    func unreachable() async throws {
        let db = Database(
            url: "postgresql://frameflow@127.0.0.1:1/frameflow",
            configuration: .init(maxConnections: 2, unavailableTimeout: .milliseconds(700)), logger: TestDatabase.logger)
        let start = ContinuousClock.now
        do {
            try await db.withConnection { try $0.query("SELECT 1") }
            Issue.record("query succeeded against a closed port")
        } catch let error as StoreError {
            #expect(error.code == .databaseUnavailable)
        }
        #expect(ContinuousClock.now - start < .seconds(3))
        #expect(await db.ping() == false)
        await db.shutdown()
    }

    @Test("the pool never opens more than maxConnections and times out waiters")
    func bounded() async throws {
        try await TestDatabase.withFresh { _, url in
            let db = Database(
                url: url, configuration: .init(maxConnections: 2, unavailableTimeout: .seconds(10)),
                logger: TestDatabase.logger)
            let pids = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        try await db.withConnection { conn in
                            try conn.query("SELECT pg_sleep(0.05)")
                            return try conn.query("SELECT pg_backend_pid() AS pid").first!.int("pid")
                        }
                    }
                }
                var all = Set<Int>()
                for try await pid in group { all.insert(pid) }
                return all
            }
            #expect(pids.count <= 2)
            await db.shutdown()

            let tight = Database(
                url: url, configuration: .init(maxConnections: 1, unavailableTimeout: .milliseconds(300)),
                logger: TestDatabase.logger)
            async let slow: Void = tight.withConnection(timeout: .seconds(5)) { try $0.query("SELECT pg_sleep(1.2)") }
            try await Task.sleep(for: .milliseconds(100))
            do {
                try await tight.withConnection { try $0.query("SELECT 1") }
                Issue.record("got a connection from an exhausted pool")
            } catch let error as StoreError {
                #expect(error.code == .databaseUnavailable)
            }
            try await slow
            await tight.shutdown()
            await #expect(throws: StoreError.self) { try await tight.withConnection { try $0.query("SELECT 1") } }
        }
    }

    @Test("bulk callers never hold the connections reserved for interactive ones")
    func bulkLane() async throws {
        try await TestDatabase.withFresh { _, url in
            let db = Database(
                url: url, configuration: .init(maxConnections: 3, unavailableTimeout: .seconds(10), reservedForInteractive: 2),
                logger: TestDatabase.logger)
            let bulkDone = Atomic<Bool>(false)
            async let slow: Void = db.withConnection(lane: .bulk) { conn in
                try conn.query("SELECT pg_sleep(4)")
                bulkDone.store(true, ordering: .sequentiallyConsistent)
            }
            try await Task.sleep(for: .milliseconds(300))
            // A second bulk caller waits for the bulk lane although the pool could open two more connections.
            do {
                try await db.withConnection(lane: .bulk, timeout: .seconds(1)) { try $0.query("SELECT 1") }
                Issue.record("a bulk caller got a connection reserved for interactive ones")
            } catch let error as StoreError {
                #expect(error.code == .databaseUnavailable)
            }
            // Interactive callers are served at once, while the bulk one still runs.
            try await db.withConnection { try $0.query("SELECT 1") }
            try await db.transaction { try $0.query("SELECT 1") }
            #expect(bulkDone.load(ordering: .sequentiallyConsistent) == false)
            try await slow
            try await db.withConnection(lane: .bulk) { try $0.query("SELECT 1") }
            await db.shutdown()
        }
    }

    @Test("a cancelled waiter stops waiting at once, and the connection goes to the next waiter")
    func cancelledWaiter() async throws {
        try await TestDatabase.withFresh { _, url in
            let db = Database(
                url: url, configuration: .init(maxConnections: 1, unavailableTimeout: .seconds(30)),
                logger: TestDatabase.logger)
            async let busy: Void = db.withConnection { try $0.query("SELECT pg_sleep(0.8)") }
            try await Task.sleep(for: .milliseconds(100))
            let waiter = Task { try await db.withConnection { try $0.query("SELECT 1") } }
            try await Task.sleep(for: .milliseconds(100))
            let cancelledAt = ContinuousClock.now
            waiter.cancel()
            await #expect(throws: StoreError.self) { try await waiter.value }
            // Without the deadline as a child of the wait, it would sit out its 30 s.
            #expect(ContinuousClock.now - cancelledAt < .milliseconds(500))
            try await busy
            // The pool's only connection was not lost to the cancelled waiter.
            let one = try await db.withConnection(timeout: .seconds(2)) { try $0.query("SELECT 1 AS one").first!.int("one") }
            #expect(one == 1)
            await db.shutdown()
        }
    }

    @Test("a statement past the client-side timeout fails with `unavailable` and the pool recovers")
    func statementTimeout() async throws {
        try await TestDatabase.withFresh { _, url in
            let db = Database(
                url: url, configuration: .init(maxConnections: 1, statementTimeout: .milliseconds(300)),
                logger: TestDatabase.logger)
            let start = ContinuousClock.now
            do {
                try await db.withConnection { try $0.query("SELECT pg_sleep(5)") }
                Issue.record("a 5 s statement finished under a 300 ms timeout")
            } catch let error as StoreError {
                #expect(error.code == .databaseUnavailable)
            }
            #expect(ContinuousClock.now - start < .seconds(3))
            let one = try await db.withConnection { try $0.query("SELECT 1 AS one").first!.int("one") }
            #expect(one == 1)
            await db.shutdown()
        }
    }

    @Test("a transaction left open by a caller is rolled back before the connection is reused")
    func leakedTransaction() async throws {
        try await TestDatabase.withFresh { _, url in
            let db = Database(url: url, maxConnections: 1, logger: TestDatabase.logger)
            try await db.withConnection { conn in
                try conn.query("CREATE TABLE t (x int)")
                try conn.query("BEGIN")
                try conn.query("INSERT INTO t VALUES (1)")
            }
            let (open, rows) = try await db.withConnection { conn in
                (conn.inTransaction, try conn.query("SELECT count(*) AS n FROM t").first!.int("n"))
            }
            #expect(!open && rows == 0)
            await db.shutdown()
        }
    }

    @Test("a connection killed by the server is replaced transparently")
    func terminatedBackend() async throws {
        try await TestDatabase.withFresh { db, url in
            let pool = Database(url: url, maxConnections: 1, logger: TestDatabase.logger)
            let pid = try await pool.withConnection { try $0.query("SELECT pg_backend_pid() AS pid").first!.int("pid") }
            try await db.withConnection { try $0.query("SELECT pg_terminate_backend($1::int)", pid) }
            try await Task.sleep(for: .milliseconds(100))
            let pid2 = try await pool.withConnection { try $0.query("SELECT pg_backend_pid() AS pid").first!.int("pid") }
            #expect(pid2 != pid)
            await pool.shutdown()
        }
    }

    @Test("the pool survives a PostgreSQL restart: unavailable while down, back afterwards")
    func survivesRestart() async throws {
        _ = try TestDatabase.adminURL()  // same gate as the other database tests
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ff-restart-\(UUID().uuidString.prefix(8))").path
        // A random port may be taken by another cluster on this machine: try a few.
        var port = 0
        for attempt in 1...4 {
            port = Int.random(in: 56_000..<60_000)
            do {
                try await ClusterScript.run("pg_start '\(dir)' \(port)")
                break
            } catch where attempt < 4 {
                continue
            }
        }
        let url = "postgresql://frameflow@127.0.0.1:\(port)/frameflow"
        let db = Database(
            url: url, configuration: .init(maxConnections: 4, unavailableTimeout: .seconds(1)), logger: TestDatabase.logger)
        do {
            try await db.migrate()
            let users = UserStore(database: db)
            _ = try await users.create(email: "before@example.com", passwordHash: "x")
            #expect(await db.ping())

            // Down for 3 seconds: calls must fail fast with `unavailable`, never hang.
            let restart = try ClusterScript.launch("pg_restart '\(dir)' 3")
            var sawUnavailable = false
            let restartDeadline = ContinuousClock.now + .seconds(60)
            while restart.isRunning && ContinuousClock.now < restartDeadline {
                let start = ContinuousClock.now
                do {
                    _ = try await users.count()
                } catch let error as StoreError {
                    #expect(error.code == .databaseUnavailable, "\(error)")
                    sawUnavailable = true
                }
                #expect(ContinuousClock.now - start < .seconds(8))
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(restart.terminationStatus == 0)
            #expect(sawUnavailable)

            // Back up: the pool reconnects on its own (allowing one broken idle connection per slot).
            var recovered = false
            for _ in 0..<20 where !recovered {
                if (try? await users.count()) == 1 { recovered = true } else { try await Task.sleep(for: .milliseconds(250)) }
            }
            #expect(recovered)
            #expect(await db.ping())
            _ = try await users.create(email: "after@example.com", passwordHash: "x")
        } catch {
            await db.shutdown()
            try? await ClusterScript.run("pg_stop '\(dir)'; rm -rf '\(dir)'")
            throw error
        }
        await db.shutdown()
        try await ClusterScript.run("pg_stop '\(dir)' && rm -rf '\(dir)'")
    }
}
