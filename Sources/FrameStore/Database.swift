import Dispatch
import Foundation
import Logging

/// A bounded pool of PostgreSQL connections, each living on its own serial
/// dispatch queue.
///
/// libpq is blocking, so every statement runs on the queue that owns its
/// connection and callers `await` the result through a continuation: the
/// cooperative pool and NIO event loops never block on the database. The pool
/// opens connections lazily up to `maxConnections`. Failures are bounded in
/// time rather than hanging: a caller waits at most `unavailableTimeout` for a
/// free connection or for the server to come back, then gets
/// ``StoreError/unavailable(_:)``. A broken connection (server restart,
/// network loss) is detected, discarded and reopened, with a capped
/// exponential back-off shared by the whole pool so that an outage does not
/// turn into a reconnect storm. Statements are never retried automatically
/// once sent, because they may not be idempotent; only whole transactions that
/// lost a deadlock are re-run (see ``transaction(_:)``).
public final class Database: Sendable {
    /// Tuning knobs; the defaults suit the coordinator.
    public struct Configuration: Sendable {
        /// Upper bound on open connections.
        public var maxConnections: Int
        /// How long a call may wait for a free connection or a reachable server before failing with `unavailable`.
        public var unavailableTimeout: Duration
        /// First delay between reconnect attempts after a failure.
        public var initialBackoff: Duration
        /// Largest delay between reconnect attempts.
        public var maxBackoff: Duration
        /// libpq `connect_timeout` in seconds (a URL parameter overrides it).
        public var connectTimeoutSeconds: Int
        /// Client-side limit on one statement; past it the connection is dropped and the caller gets `unavailable`.
        public var statementTimeout: Duration

        public init(
            maxConnections: Int = 8, unavailableTimeout: Duration = .seconds(5),
            initialBackoff: Duration = .milliseconds(50), maxBackoff: Duration = .seconds(2),
            connectTimeoutSeconds: Int = 5, statementTimeout: Duration = .seconds(60)
        ) {
            self.statementTimeout = statementTimeout
            self.maxConnections = max(1, maxConnections)
            self.unavailableTimeout = unavailableTimeout
            self.initialBackoff = initialBackoff
            self.maxBackoff = maxBackoff
            self.connectTimeoutSeconds = connectTimeoutSeconds
        }
    }

    private let url: String
    let configuration: Configuration
    let logger: Logger
    private let state = Locked(PoolState())

    public convenience init(url: String, maxConnections: Int = 8, logger: Logger) {
        self.init(url: url, configuration: Configuration(maxConnections: maxConnections), logger: logger)
    }

    public init(url: String, configuration: Configuration, logger: Logger) {
        self.url = url
        self.configuration = configuration
        self.logger = logger
    }

    // MARK: Public API

    /// Runs `body` with a pooled connection on that connection's own thread.
    ///
    /// `body` is synchronous on purpose: it may issue several statements (or a
    /// ``PostgresConnection/transaction(_:)``) without hopping threads. Throws
    /// `unavailable` when no connection could be had within `timeout`
    /// (default: the configuration's `unavailableTimeout`).
    @discardableResult
    public func withConnection<T: Sendable>(
        timeout: Duration? = nil,
        _ body: @escaping @Sendable (PostgresConnection) throws -> T
    ) async throws -> T {
        let deadline = ContinuousClock.now + (timeout ?? configuration.unavailableTimeout)
        let slot = try await acquire(deadline: deadline)
        do {
            let value = try await run(on: slot, deadline: deadline, body)
            release(slot)
            return value
        } catch {
            release(slot)
            throw error
        }
    }

    /// Runs `body` in a transaction, re-running it (up to 5 times) when
    /// PostgreSQL aborts it as a deadlock victim or serialization failure;
    /// such a transaction had no effect, so running it again is safe.
    @discardableResult
    public func transaction<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) throws -> T) async throws -> T {
        var attempt = 0
        while true {
            do {
                return try await withConnection { conn in try conn.transaction(body) }
            } catch let error as StoreError where error.isTransient && attempt < 4 {
                attempt += 1
                logger.debug("retrying transaction after \(error)", metadata: ["attempt": "\(attempt)"])
                try? await Task.sleep(for: .milliseconds(Int.random(in: 5...50) * attempt))
            }
        }
    }

    /// Whether the database answers `SELECT 1` within two seconds (for `/ready`).
    public func ping() async -> Bool {
        do {
            _ = try await withConnection(timeout: .seconds(2)) { try $0.query("SELECT 1") }
            return true
        } catch {
            return false
        }
    }

    /// Closes idle connections and fails waiting callers; connections in use
    /// are closed when they are returned. Later calls fail with `unavailable`.
    public func shutdown() async {
        let (idle, waiters) = state.withLock { s -> ([ConnectionSlot], [Waiter]) in
            s.isShutdown = true
            let idle = s.idle
            let waiters = s.waiters
            s.idle.removeAll()
            s.waiters.removeAll()
            s.open -= idle.count
            return (idle, waiters)
        }
        for w in waiters { w.continuation.resume(throwing: StoreError.unavailable("database pool shut down")) }
        for slot in idle { await slot.close() }
    }

    /// Applies pending schema migrations (see ``Migrations``).
    public func migrate() async throws {
        try await Migrations.apply(on: self)
    }

    // MARK: Pool internals

    struct Waiter {
        let id: UInt64
        let continuation: CheckedContinuation<ConnectionSlot, any Error>
    }

    struct PoolState {
        var idle: [ConnectionSlot] = []
        var open = 0
        var waiters: [Waiter] = []
        var nextID: UInt64 = 0
        var isShutdown = false
        /// Consecutive failed connection attempts; drives the shared back-off.
        var connectFailures = 0
        /// No new connection attempt before this instant (shared back-off gate).
        var nextConnectAttempt: ContinuousClock.Instant?
        var lastConnectError = ""
    }

    private func acquire(deadline: ContinuousClock.Instant) async throws -> ConnectionSlot {
        enum Decision { case ready(ConnectionSlot), waiting(UInt64), shutdown }
        let waiterID = state.withLock { s -> UInt64 in s.nextID += 1; return s.nextID }
        let slot = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<ConnectionSlot, any Error>) in
            let decision = state.withLock { s -> Decision in
                if s.isShutdown { return .shutdown }
                if let slot = s.idle.popLast() { return .ready(slot) }
                if s.open < configuration.maxConnections {
                    s.open += 1
                    s.nextID += 1
                    return .ready(ConnectionSlot(label: "frameflow.pg.\(s.nextID)"))
                }
                s.waiters.append(Waiter(id: waiterID, continuation: continuation))
                return .waiting(waiterID)
            }
            switch decision {
            case .ready(let slot): continuation.resume(returning: slot)
            case .shutdown: continuation.resume(throwing: StoreError.unavailable("database pool shut down"))
            case .waiting(let id):
                Task { [self] in
                    try? await Task.sleep(until: deadline, clock: .continuous)
                    let timedOut = state.withLock { s -> Waiter? in
                        guard let i = s.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                        return s.waiters.remove(at: i)
                    }
                    timedOut?.continuation.resume(throwing: StoreError.unavailable(
                        "no database connection free within the timeout (pool of \(configuration.maxConnections))"))
                }
            }
        }
        return slot
    }

    private func release(_ slot: ConnectionSlot) {
        let (waiter, closeIt) = state.withLock { s -> (Waiter?, Bool) in
            if s.isShutdown {
                s.open -= 1
                return (nil, true)
            }
            if !s.waiters.isEmpty { return (s.waiters.removeFirst(), false) }
            s.idle.append(slot)
            return (nil, false)
        }
        if closeIt { slot.closeAsync() }
        waiter?.continuation.resume(returning: slot)
    }

    private enum Attempt<T: Sendable>: Sendable {
        case done(T)
        case connectFailed(String)
        case backingOff(ContinuousClock.Instant)
    }

    /// Makes sure the slot holds a usable connection (reconnecting under the
    /// shared back-off until `deadline`), then runs `body` on the slot's queue.
    private func run<T: Sendable>(
        on slot: ConnectionSlot, deadline: ContinuousClock.Instant,
        _ body: @escaping @Sendable (PostgresConnection) throws -> T
    ) async throws -> T {
        let url = self.url
        let connectTimeout = configuration.connectTimeoutSeconds
        let statementTimeout = configuration.statementTimeout
        do {
            while true {
                let attempt: Attempt<T> = try await slot.run { holder in
                    if let c = holder.connection, !c.isUsable {
                        c.close()
                        holder.connection = nil
                    }
                    if holder.connection == nil {
                        if let gate = self.state.withLock({ $0.nextConnectAttempt }), gate > .now {
                            return .backingOff(gate)
                        }
                        do {
                            holder.connection = try PostgresConnection(
                                url: url, connectTimeoutSeconds: connectTimeout, statementTimeout: statementTimeout)
                            self.connectSucceeded()
                        } catch {
                            if case .unavailable(let m)? = error as? StoreError { return .connectFailed(m) }
                            return .connectFailed(String(describing: error))
                        }
                    }
                    let conn = holder.connection!
                    defer {
                        // Never hand the next caller a transaction someone left open.
                        if !conn.isBroken && conn.inTransaction {
                            if (try? conn.query("ROLLBACK")) == nil { conn.close() }
                        }
                        if conn.isBroken || !conn.isOpen {
                            conn.close()
                            holder.connection = nil
                        }
                    }
                    return .done(try body(conn))
                }
                let retryAt: ContinuousClock.Instant
                switch attempt {
                case .done(let value):
                    return value
                case .connectFailed(let message):
                    retryAt = connectFailed(message)
                case .backingOff(let gate):
                    retryAt = gate
                }
                guard retryAt < deadline else {
                    let last = state.withLock { $0.lastConnectError }
                    throw StoreError.unavailable(last)
                }
                try await Task.sleep(until: retryAt, clock: .continuous)
            }
        }
    }

    private func connectSucceeded() {
        let recovered = state.withLock { s -> Bool in
            let was = s.connectFailures > 0
            s.connectFailures = 0
            s.nextConnectAttempt = nil
            return was
        }
        if recovered { logger.info("database connection re-established") }
    }

    /// Records a failed attempt and returns when the next one may be made.
    private func connectFailed(_ message: String) -> ContinuousClock.Instant {
        let (failures, gate) = state.withLock { s -> (Int, ContinuousClock.Instant) in
            s.connectFailures += 1
            s.lastConnectError = message
            var delay = configuration.initialBackoff
            for _ in 1..<min(s.connectFailures, 20) { delay = min(delay * 2, configuration.maxBackoff) }
            let gate = ContinuousClock.now + delay
            s.nextConnectAttempt = gate
            return (s.connectFailures, gate)
        }
        if failures == 1 {
            logger.warning("database connection failed; retrying with back-off", metadata: ["error": "\(message)"])
        }
        return gate
    }
}

/// A connection holder bound to one serial queue; only that queue touches `connection`.
final class ConnectionSlot: @unchecked Sendable {
    private let queue: DispatchQueue
    /// Accessed only on `queue`.
    var connection: PostgresConnection?

    init(label: String) {
        queue = DispatchQueue(label: label)
    }

    func run<R: Sendable>(_ work: @escaping @Sendable (ConnectionSlot) throws -> R) async throws -> R {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(with: Result { try work(self) })
            }
        }
    }

    func close() async {
        _ = try? await run { holder in
            holder.connection?.close()
            holder.connection = nil
        }
    }

    func closeAsync() {
        queue.async {
            self.connection?.close()
            self.connection = nil
        }
    }
}

/// A value guarded by a lock; the pool's bookkeeping is tiny, so a mutex beats an actor hop.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) { self.value = value }

    func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}
