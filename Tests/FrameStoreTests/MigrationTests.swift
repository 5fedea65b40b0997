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

    /// Lease renewals rewrite `lease_expires_at` of every leased row each heartbeat batch: with
    /// an index over it no renewal could be a HOT update, and the lease indexes bloated until the
    /// claim was most of PostgreSQL's CPU (migration 11).
    @Test("no index covers what lease renewals update, and the lease tables leave room for HOT updates")
    func renewalsStayHeapOnly() async throws {
        try await TestDatabase.withFresh { db, _ in
            let (indexes, options) = try await db.withConnection { conn in
                (try conn.query("SELECT indexdef FROM pg_indexes WHERE tablename = 'segments'").rows.map { try $0.string("indexdef") },
                 try conn.query("SELECT array_to_string(reloptions, ',') AS o FROM pg_class WHERE relname = 'segments'").first!.string("o"))
            }
            #expect(!indexes.isEmpty)
            for index in indexes { #expect(!index.contains("lease_expires_at"), "\(index)") }
            #expect(options.contains("fillfactor=70"), "\(options)")
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
