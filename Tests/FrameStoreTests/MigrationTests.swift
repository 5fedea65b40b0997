import Foundation
@testable import FrameStore
import Testing

@Suite("Migrations", .enabled(if: TestDatabase.enabled))
struct MigrationTests {
    @Test("migrating twice is a no-op and records every version once")
    func idempotent() async throws {
        try await TestDatabase.withFresh { db, _ in
            try await db.migrate()
            try await db.migrate()
            let versions = try await db.withConnection { conn in
                try conn.query("SELECT version FROM schema_migrations ORDER BY version").rows.map { try $0.int("version") }
            }
            #expect(versions == Migrations.all.map(\.version))
        }
    }

    @Test("coordinators migrating at the same time serialise on the advisory lock")
    func concurrent() async throws {
        try await TestDatabase.withFresh(migrate: false) { db, url in
            let pools = (0..<6).map { _ in Database(url: url, maxConnections: 1, logger: TestDatabase.logger) }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for pool in pools { group.addTask { try await pool.migrate() } }
                try await group.waitForAll()
            }
            for pool in pools { await pool.shutdown() }
            let count = try await db.withConnection { conn in
                try conn.query("SELECT count(*) AS n FROM schema_migrations").first!.int("n")
            }
            #expect(count == Migrations.all.count)
            let tables = try await db.withConnection { conn in
                try conn.query("""
                    SELECT count(*) AS n FROM information_schema.tables
                    WHERE table_schema = 'public' AND table_name IN ('users','jobs','segments','nodes','job_events')
                    """).first!.int("n")
            }
            #expect(tables == 5)
        }
    }
}
