import FrameCore
import Foundation
import NIOPosix

/// One PostgreSQL notification (`NOTIFY channel, 'payload'`).
public struct PostgresNotification: Sendable, Hashable {
    public var channel: String
    public var payload: String
    /// The server process that sent it.
    public var senderPID: Int
}

/// A dedicated connection that LISTENs to channels: PostgreSQL's NOTIFY
/// carries a small payload to every listening session of every process on the
/// database, which is how coordinators tell each other that a job changed.
///
/// The connection is not pooled (it would sit idle in the pool's LISTEN state)
/// and blocks only its own thread: every libpq call runs on a one-thread
/// `NIOThreadPool` owned by the listener, never on the cooperative pool.
/// ``next(timeout:)`` returns the notifications that arrived within the
/// timeout (so the caller can check for cancellation between waits) and
/// throws `unavailable` when the connection broke: open a new listener then,
/// and re-read whatever state the notifications were about (they are not
/// queued for a session that was not listening).
public final class PostgresListener: @unchecked Sendable {
    // Touched only on `thread`, one call at a time (the caller awaits each call).
    private var connection: PostgresConnection?
    private let thread: NIOThreadPool

    private init(thread: NIOThreadPool) {
        self.thread = thread
    }

    /// Opens a connection to `url` and LISTENs to `channels` (names of letters, digits and `_`).
    static func open(url: String, channels: [String], connectTimeoutSeconds: Int) async throws -> PostgresListener {
        for channel in channels where channel.isEmpty || !channel.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) {
            throw StoreError.invalidState("'\(channel)' is not a valid notification channel name")
        }
        let thread = NIOThreadPool(numberOfThreads: 1)
        thread.start()
        let listener = PostgresListener(thread: thread)
        do {
            // Opened on the listener's thread and kept there (a connection is not Sendable).
            try await thread.runIfActive {
                let conn = try PostgresConnection(
                    url: url, connectTimeoutSeconds: connectTimeoutSeconds, applicationName: "frameflow-listen")
                for channel in channels { try conn.query("LISTEN \(channel)") }
                listener.connection = conn
            }
            return listener
        } catch {
            try? await thread.shutdownGracefully()
            throw error
        }
    }

    /// The notifications that arrive within `timeout` (none when it passes quietly).
    public func next(timeout: Duration) async throws -> [PostgresNotification] {
        try await thread.runIfActive {
            guard let connection = self.connection else { throw StoreError.unavailable("the listener is closed") }
            return try connection.waitForNotifications(timeout: timeout)
        }
    }

    /// Closes the connection and ends the listener's thread.
    public func close() async {
        _ = try? await thread.runIfActive { self.connection = nil }
        try? await thread.shutdownGracefully()
    }
}

extension Database {
    /// A new ``PostgresListener`` on this database's server, LISTENing to `channels`.
    public func listen(to channels: [String]) async throws -> PostgresListener {
        try await PostgresListener.open(
            url: url, channels: channels, connectTimeoutSeconds: configuration.connectTimeoutSeconds)
    }

    /// Sends `payload` on `channel` to every listener (delivered when the transaction commits).
    public func notify(channel: String, payloads: [String]) async throws {
        guard !payloads.isEmpty else { return }
        let list = try PostgresJSON(payloads)
        try await withConnection { conn in
            try conn.query("SELECT pg_notify($1, p) FROM jsonb_array_elements_text($2::jsonb) AS p", channel, list)
        }
    }
}
