import Foundation
import FrameStore
import Logging
import Testing

/// Gives each test its own empty database on the server named by DATABASE_URL.
///
/// Tests run in parallel, so sharing one database would make them see each
/// other's jobs and leases. Without DATABASE_URL the database tests fail
/// loudly (a green run must mean the store was exercised) unless
/// FRAMEFLOW_SKIP_DB_TESTS=1 says to skip them on purpose.
enum TestDatabase {
    static let environment = ProcessInfo.processInfo.environment

    /// False only when the caller explicitly asked to skip; suites use `.enabled(if:)` with it.
    static let enabled = environment["FRAMEFLOW_SKIP_DB_TESTS"] != "1"

    struct MissingURL: Error, CustomStringConvertible {
        var description: String {
            "DATABASE_URL is not set: the FrameStore tests need a PostgreSQL server "
                + "(scripts/test starts one; or `source scripts/lib/postgres.sh && pg_start /tmp/ff-pg 55432`). "
                + "Set FRAMEFLOW_SKIP_DB_TESTS=1 to skip them deliberately."
        }
    }

    static func adminURL() throws -> String {
        guard let url = environment["DATABASE_URL"], !url.isEmpty else { throw MissingURL() }
        return url
    }

    static var logger: Logger {
        var logger = Logger(label: "frameflow.store.tests")
        logger.logLevel = .error
        return logger
    }

    /// `url` with its database name replaced (DATABASE_URL must be a postgresql:// URI).
    static func url(_ url: String, database: String) throws -> String {
        guard var components = URLComponents(string: url) else {
            throw StoreError.decoding("DATABASE_URL is not a URI: \(url)")
        }
        components.path = "/" + database
        return components.string!
    }

    /// Creates `ff_test_<random>`, runs `body` with a migrated pool on it, then drops it.
    static func withFresh(
        maxConnections: Int = 8, migrate: Bool = true,
        _ body: (Database, String) async throws -> Void
    ) async throws {
        let admin = try adminURL()
        let name = "ff_test_" + String(UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16))
        let adminDB = Database(url: admin, maxConnections: 1, logger: logger)
        // The name is generated here, not user input; identifiers cannot be bound as parameters.
        try await adminDB.withConnection { try $0.query("CREATE DATABASE \(name)") }
        let url = try url(admin, database: name)
        let db = Database(url: url, maxConnections: maxConnections, logger: logger)
        do {
            if migrate { try await db.migrate() }
            try await body(db, url)
        } catch {
            await db.shutdown()
            await drop(name, adminDB)
            throw error
        }
        await db.shutdown()
        await drop(name, adminDB)
    }

    private static func drop(_ name: String, _ adminDB: Database) async {
        _ = try? await adminDB.withConnection { try $0.query("DROP DATABASE IF EXISTS \(name) WITH (FORCE)") }
        await adminDB.shutdown()
    }
}
