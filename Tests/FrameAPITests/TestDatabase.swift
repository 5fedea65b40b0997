import Foundation
import FrameStore
import Logging

/// Gives each test its own migrated database on the server named by DATABASE_URL
/// (tests run in parallel; a shared database would mix their users and jobs).
/// Without DATABASE_URL the tests fail with a message saying how to get one.
enum TestDatabase {
    struct MissingURL: Error, CustomStringConvertible {
        var description: String {
            "DATABASE_URL is not set: the FrameAPI tests need a PostgreSQL server "
                + "(scripts/test starts one; or `source scripts/lib/postgres.sh && pg_start /tmp/ff-api-pg 55499`)."
        }
    }

    static var logger: Logger {
        var logger = Logger(label: "frameflow.api.tests")
        logger.logLevel = .error
        return logger
    }

    static func withFresh(_ body: (Database) async throws -> Void) async throws {
        guard let admin = ProcessInfo.processInfo.environment["DATABASE_URL"], !admin.isEmpty else { throw MissingURL() }
        let name = "ff_api_" + String(UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16))
        let adminDB = Database(url: admin, maxConnections: 1, logger: logger)
        // The name is generated here, not user input; identifiers cannot be bound as parameters.
        try await adminDB.withConnection { try $0.query("CREATE DATABASE \(name)") }
        guard var components = URLComponents(string: admin) else { throw MissingURL() }
        components.path = "/" + name
        let db = Database(url: components.string!, maxConnections: 4, logger: logger)
        var failure: (any Error)?
        do {
            try await db.migrate()
            try await body(db)
        } catch {
            failure = error
        }
        await db.shutdown()
        _ = try? await adminDB.withConnection { try $0.query("DROP DATABASE IF EXISTS \(name) WITH (FORCE)") }
        await adminDB.shutdown()
        if let failure { throw failure }
    }
}
