import CLibPQ
import Foundation

/// One libpq connection (`PGconn`), used synchronously by one thread at a time.
///
/// libpq calls block, so this type is deliberately not `Sendable` and has no
/// async API: ``Database`` owns each connection on its own serial dispatch
/// queue and hands it to a closure running there, which keeps blocking I/O off
/// NIO event loops and the cooperative pool. Every statement goes through
/// `PQsendQueryParams` with text-format parameters (no string splicing), and
/// server errors are classified into ``StoreError`` cases; a connection that
/// breaks marks itself unusable so the pool replaces it.
public final class PostgresConnection {
    private var conn: OpaquePointer?
    /// Set when a statement failed because the connection broke; the pool discards such connections.
    private(set) var isBroken = false
    /// Client-side bound on one statement (see ``awaitResult(_:)``).
    let statementTimeout: Duration
    /// Statements prepared on this connection (``query(prepared:_:)``): SQL text -> statement name.
    private var prepared: [String: String] = [:]

    /// Opens a connection. `url` is a libpq URI or key=value string; our
    /// defaults (connect timeout, TCP keepalives) apply unless it overrides them.
    init(
        url: String, connectTimeoutSeconds: Int = 5, statementTimeout: Duration = .seconds(60),
        applicationName: String = "frameflow"
    ) throws(StoreError) {
        self.statementTimeout = statementTimeout
        // Earlier keywords are overridden by the expanded URL, so the URL wins.
        let pairs: [(String, String)] = [
            ("connect_timeout", String(connectTimeoutSeconds)),
            ("application_name", applicationName),
            ("keepalives", "1"),
            ("keepalives_idle", "10"),
            ("keepalives_interval", "3"),
            ("keepalives_count", "3"),
            ("tcp_user_timeout", "20000"),
            ("dbname", url),
        ]
        let keys = pairs.map { strdup($0.0) }
        let values = pairs.map { strdup($0.1) }
        defer {
            keys.forEach { free($0) }
            values.forEach { free($0) }
        }
        var keyPtrs: [UnsafePointer<CChar>?] = keys.map { UnsafePointer($0) } + [nil]
        var valuePtrs: [UnsafePointer<CChar>?] = values.map { UnsafePointer($0) } + [nil]
        let c = PQconnectdbParams(&keyPtrs, &valuePtrs, 1)
        guard let c else { throw .unavailable("out of memory creating a connection") }
        guard PQstatus(c) == CONNECTION_OK else {
            let message = Self.trimmed(PQerrorMessage(c))
            PQfinish(c)
            throw .unavailable(message.isEmpty ? "connection failed" : message)
        }
        conn = c
        // Notices ("relation already exists, skipping") would go to stderr; drop them.
        PQsetNoticeProcessor(c, { _, _ in }, nil)
        // Fixed session settings that the text decoders rely on.
        _ = try query("SET TIME ZONE 'UTC'")
        _ = try query("SET DateStyle = 'ISO, YMD'")
    }

    deinit { close() }

    /// Closes the connection; further statements fail with `unavailable`.
    func close() {
        if let c = conn { PQfinish(c) }
        conn = nil
    }

    /// Whether the connection still looks usable, without a round trip:
    /// reads whatever the server sent (e.g. a termination notice after a
    /// restart), which turns a silently closed socket into CONNECTION_BAD.
    var isUsable: Bool {
        guard let c = conn, !isBroken else { return false }
        // A terminated backend first leaves its FATAL message, then EOF; one
        // read returns only the message, so read until nothing is pending
        // (each call is a non-blocking recv).
        for _ in 0..<3 {
            if PQconsumeInput(c) == 0 || PQstatus(c) != CONNECTION_OK { return false }
        }
        return true
    }

    /// Whether the connection has not been closed.
    var isOpen: Bool { conn != nil }

    /// Whether a transaction block is open on this connection.
    public var inTransaction: Bool {
        guard let c = conn else { return false }
        return PQtransactionStatus(c) != PQTRANS_IDLE
    }

    /// Runs one statement with text parameters (`$1`, `$2`, ...; nil binds SQL NULL).
    @discardableResult
    public func query(_ sql: String, _ params: [(any PostgresParameter)?]) throws(StoreError) -> PostgresResult {
        try execute(params) { c, count, values in PQsendQueryParams(c, sql, count, nil, values, nil, nil, 0) }
    }

    /// Runs one statement like ``query(_:_:)-(_,[(any PostgresParameter)?])``, but
    /// prepared once per connection (a named server-side statement, kept for the
    /// connection's life): for the hot statements (claim, renewal, completion),
    /// whose planning costs more than their execution. Only for DML whose tables
    /// keep their shape while the connection lives (not for migrations).
    @discardableResult
    public func query(prepared sql: String, _ params: [(any PostgresParameter)?]) throws(StoreError) -> PostgresResult {
        guard let c = conn, !isBroken else { throw .unavailable("connection is closed") }
        let name: String
        if let known = prepared[sql] {
            name = known
        } else {
            name = "ff_\(prepared.count + 1)"
            guard PQsendPrepare(c, name, sql, Int32(params.count), nil) != 0 else { throw sendFailed(c) }
            let res = try awaitResult(c)
            defer { PQclear(res) }
            guard PQresultStatus(res) == PGRES_COMMAND_OK else { throw classify(res, connection: c) }
            prepared[sql] = name
        }
        return try execute(params) { c, count, values in PQsendQueryPrepared(c, name, count, values, nil, nil, 0) }
    }

    /// Variadic convenience for ``query(prepared:_:)-(_,[(any PostgresParameter)?])``.
    @discardableResult
    public func query(prepared sql: String, _ params: (any PostgresParameter)?...) throws(StoreError) -> PostgresResult {
        try query(prepared: sql, params)
    }

    private func sendFailed(_ c: OpaquePointer) -> StoreError {
        isBroken = PQstatus(c) != CONNECTION_OK
        return isBroken ? .unavailable(Self.trimmed(PQerrorMessage(c))) : .queryFailed(sqlState: nil, message: Self.trimmed(PQerrorMessage(c)))
    }

    /// Sends one statement through `send` (given the connection, the parameter count and the
    /// parameters as C strings) and reads its result.
    private func execute(
        _ params: [(any PostgresParameter)?],
        send: (OpaquePointer, Int32, UnsafePointer<UnsafePointer<CChar>?>?) -> Int32
    ) throws(StoreError) -> PostgresResult {
        guard let c = conn, !isBroken else { throw .unavailable("connection is closed") }
        // libpq takes C strings: a NUL would silently cut the value short (and PostgreSQL text cannot
        // hold one anyway), so such a value is refused instead of stored truncated.
        let values = params.map { $0?.postgresText }
        if let position = values.firstIndex(where: { $0?.utf8.contains(0) == true }) {
            throw .invalidParameter("parameter $\(position + 1) contains a NUL character, which PostgreSQL text cannot hold")
        }
        let texts: [UnsafeMutablePointer<CChar>?] = values.map { v in v.map { strdup($0) } }
        defer { texts.forEach { free($0) } }
        let pointers: [UnsafePointer<CChar>?] = texts.map { $0.map { UnsafePointer($0) } }
        let sent = pointers.withUnsafeBufferPointer { buf in send(c, Int32(params.count), buf.baseAddress) }
        guard sent != 0 else { throw sendFailed(c) }
        let res = try awaitResult(c)
        defer { PQclear(res) }
        let status = PQresultStatus(res)
        guard status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK else {
            throw classify(res, connection: c)
        }
        let nFields = Int(PQnfields(res))
        let nRows = Int(PQntuples(res))
        let columns = PostgresColumns((0..<nFields).map { String(cString: PQfname(res, Int32($0))) })
        var rows: [PostgresRow] = []
        rows.reserveCapacity(nRows)
        for r in 0..<nRows {
            var values: [String?] = []
            values.reserveCapacity(nFields)
            for f in 0..<nFields {
                if PQgetisnull(res, Int32(r), Int32(f)) != 0 {
                    values.append(nil)
                } else {
                    values.append(String(cString: PQgetvalue(res, Int32(r), Int32(f))))
                }
            }
            rows.append(PostgresRow(columns: columns, values: values))
        }
        let affected = Int(String(cString: PQcmdTuples(res))) ?? 0
        return PostgresResult(columns: columns.names, rows: rows, affectedRows: affected)
    }

    /// Variadic convenience for ``query(_:_:)-(_,[(any PostgresParameter)?])``.
    @discardableResult
    public func query(_ sql: String, _ params: (any PostgresParameter)?...) throws(StoreError) -> PostgresResult {
        try query(sql, params)
    }

    /// Runs `body` inside BEGIN/COMMIT, rolling back when it throws.
    ///
    /// Nested calls join the outer transaction, so store helpers can be
    /// composed without caring who opened it.
    public func transaction<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        if inTransaction { return try body(self) }
        try query("BEGIN")
        do {
            let value = try body(self)
            try query("COMMIT")
            return value
        } catch {
            if !isBroken { _ = try? query("ROLLBACK") }
            throw error
        }
    }

    /// Waits for the statement's result with a client-side deadline.
    ///
    /// `PQexecParams` would wait forever on a server that stopped answering
    /// (SIGSTOP, a half-open connection that keepalives cannot detect), which
    /// would pin this connection and its caller. Instead we poll the socket
    /// up to `statementTimeout`; on timeout we ask the server to cancel, drop
    /// the connection (its state is unknown) and report `unavailable`.
    private func awaitResult(_ c: OpaquePointer) throws(StoreError) -> OpaquePointer {
        let deadline = ContinuousClock.now + statementTimeout
        var result: OpaquePointer?
        while true {
            // Drain every result that is ready without blocking; keep the first (the only one, for one statement).
            while PQisBusy(c) == 0 {
                guard let r = PQgetResult(c) else {
                    if let result { return result }
                    isBroken = PQstatus(c) != CONNECTION_OK
                    throw .unavailable(Self.trimmed(PQerrorMessage(c)))
                }
                if result == nil { result = r } else { PQclear(r) }
            }
            let remaining = deadline - ContinuousClock.now
            guard remaining > .zero else {
                if let cancel = PQgetCancel(c) {
                    var buffer = [CChar](repeating: 0, count: 256)
                    _ = PQcancel(cancel, &buffer, Int32(buffer.count))
                    PQfreeCancel(cancel)
                }
                if let result { PQclear(result) }
                isBroken = true
                throw .unavailable("statement did not finish within \(statementTimeout); connection dropped")
            }
            let (secs, atto) = remaining.components
            let ms = Int32(clamping: secs * 1000 + atto / 1_000_000_000_000_000 + 1)
            var pfd = pollfd(fd: PQsocket(c), events: Int16(POLLIN), revents: 0)
            let ready = poll(&pfd, 1, ms)
            if ready < 0 && errno != EINTR {
                if let result { PQclear(result) }
                isBroken = true
                throw .unavailable("poll on the database socket failed (errno \(errno))")
            }
            if PQconsumeInput(c) == 0 {
                if let result { PQclear(result) }
                isBroken = true
                throw .unavailable(Self.trimmed(PQerrorMessage(c)))
            }
        }
    }

    private func classify(_ res: OpaquePointer, connection c: OpaquePointer) -> StoreError {
        func field(_ code: UInt8) -> String? {
            guard let p = PQresultErrorField(res, Int32(code)) else { return nil }
            return String(cString: p)
        }
        let sqlState = field(UInt8(ascii: "C"))
        let primary = field(UInt8(ascii: "M")) ?? Self.trimmed(PQresultErrorMessage(res))
        let detail = field(UInt8(ascii: "D"))
        let message = detail.map { "\(primary) (\($0))" } ?? primary
        // Class 08 = connection exception; 57P0x = the server is shutting down or starting up.
        if PQstatus(c) != CONNECTION_OK || sqlState?.hasPrefix("08") == true
            || ["57P01", "57P02", "57P03"].contains(sqlState ?? "") {
            isBroken = true
            return .unavailable(message.isEmpty ? Self.trimmed(PQerrorMessage(c)) : message)
        }
        if sqlState == "23505" {
            return .uniqueViolation(constraint: field(UInt8(ascii: "n")), message: message)
        }
        return .queryFailed(sqlState: sqlState, message: message)
    }

    private static func trimmed(_ p: UnsafePointer<CChar>?) -> String {
        guard let p else { return "" }
        return String(cString: p).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

extension PostgresConnection {
    /// Waits up to `timeout` for notifications on the channels this connection LISTENs to and
    /// returns those that arrived (maybe none). Blocks the calling thread: only ever called on
    /// a ``PostgresListener``'s own thread.
    func waitForNotifications(timeout: Duration) throws(StoreError) -> [PostgresNotification] {
        guard let c = conn, !isBroken else { throw .unavailable("the listening connection is closed") }
        var found = Self.drainNotifications(c)
        guard found.isEmpty else { return found }
        var pfd = pollfd(fd: PQsocket(c), events: Int16(POLLIN), revents: 0)
        let ready = poll(&pfd, 1, Int32(clamping: max(0, timeout.milliseconds)))
        if ready < 0 && errno != EINTR {
            isBroken = true
            throw .unavailable("poll on the database socket failed (errno \(errno))")
        }
        if ready > 0 {
            // EOF (server restart, connection killed) shows as a failed read here.
            if PQconsumeInput(c) == 0 || PQstatus(c) != CONNECTION_OK {
                isBroken = true
                throw .unavailable(Self.trimmed(PQerrorMessage(c)))
            }
        }
        found = Self.drainNotifications(c)
        return found
    }

    private static func drainNotifications(_ c: OpaquePointer) -> [PostgresNotification] {
        var found: [PostgresNotification] = []
        while let note = PQnotifies(c) {
            let n = note.pointee
            found.append(PostgresNotification(
                channel: String(cString: n.relname), payload: n.extra.map { String(cString: $0) } ?? "",
                senderPID: Int(n.be_pid)))
            PQfreemem(note)
        }
        return found
    }
}
