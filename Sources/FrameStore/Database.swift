import Foundation
import Logging
import NIOPosix
import Synchronization

/// A bounded pool of PostgreSQL connections, used on the pool's own threads.
///
/// libpq is blocking, so every statement runs on an `NIOThreadPool` the
/// database owns (one thread per connection it may open, so a statement
/// never queues behind another's network wait) and callers `await` the
/// result: the cooperative pool and NIO event loops never block on the
/// database. A connection is held by one caller at a time. The pool
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
        /// Connections the ``DatabaseLane/bulk`` lane never holds, kept for interactive callers.
        public var reservedForInteractive: Int

        public init(
            maxConnections: Int = 8, unavailableTimeout: Duration = .seconds(5),
            initialBackoff: Duration = .milliseconds(50), maxBackoff: Duration = .seconds(2),
            connectTimeoutSeconds: Int = 5, statementTimeout: Duration = .seconds(60), reservedForInteractive: Int = 2
        ) {
            self.reservedForInteractive = reservedForInteractive
            self.statementTimeout = statementTimeout
            self.maxConnections = max(1, maxConnections)
            self.unavailableTimeout = unavailableTimeout
            self.initialBackoff = initialBackoff
            self.maxBackoff = maxBackoff
            self.connectTimeoutSeconds = connectTimeoutSeconds
        }
    }

    let url: String
    let configuration: Configuration
    let logger: Logger
    private let state: Mutex<PoolState>
    /// Where libpq runs: `maxConnections` threads, started at init, shut down by ``shutdown()`` or deinit.
    private let threads: NIOThreadPool

    public convenience init(url: String, maxConnections: Int = 8, logger: Logger) {
        self.init(url: url, configuration: Configuration(maxConnections: maxConnections), logger: logger)
    }

    public init(url: String, configuration: Configuration, logger: Logger) {
        self.url = url
        self.configuration = configuration
        self.logger = logger
        state = Mutex(PoolState(machine: ConnectionPoolMachine(
            maxConnections: configuration.maxConnections, reservedForInteractive: configuration.reservedForInteractive)))
        threads = NIOThreadPool(numberOfThreads: configuration.maxConnections)
        threads.start()
    }

    deinit {
        // Nothing can be running (a running statement holds the database): the threads just end.
        threads.shutdownGracefully { _ in }
    }

    // MARK: Public API

    /// Runs `body` with a pooled connection on that connection's own thread.
    ///
    /// `body` is synchronous on purpose: it may issue several statements (or a
    /// ``PostgresConnection/transaction(_:)``) without hopping threads. Throws
    /// `unavailable` when no connection could be had within `timeout`
    /// (default: the configuration's `unavailableTimeout`). `lane` is the caller's
    /// (``DatabaseLane``): bulk callers never take the connections reserved for interactive ones.
    @discardableResult
    public func withConnection<T: Sendable>(
        lane: DatabaseLane = .interactive, timeout: Duration? = nil,
        _ body: @escaping @Sendable (PostgresConnection) throws -> T
    ) async throws -> T {
        let deadline = ContinuousClock.now + (timeout ?? configuration.unavailableTimeout)
        let slot = try await acquire(lane, deadline: deadline)
        do {
            let value = try await run(on: slot, deadline: deadline, body)
            release(slot, lane: lane)
            return value
        } catch {
            release(slot, lane: lane)
            throw error
        }
    }

    /// Runs `body` in a transaction, re-running it (up to 5 times) when
    /// PostgreSQL aborts it as a deadlock victim or serialization failure;
    /// such a transaction had no effect, so running it again is safe.
    @discardableResult
    public func transaction<T: Sendable>(
        lane: DatabaseLane = .interactive, _ body: @escaping @Sendable (PostgresConnection) throws -> T
    ) async throws -> T {
        var attempt = 0
        while true {
            do {
                return try await withConnection(lane: lane) { conn in try conn.transaction(body) }
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
        let (idle, parked) = state.withLock { s -> ([ConnectionSlot], [CheckedContinuation<ConnectionSlot, any Error>]) in
            let (idle, failed) = s.machine.shutdown()
            return (idle, failed.compactMap { s.parked.removeValue(forKey: $0) })
        }
        for c in parked { c.resume(throwing: Self.shutDown) }
        for slot in idle { await close(slot) }
        // Statements still running finish on their threads; queued ones fail as `unavailable`.
        threads.shutdownGracefully { _ in }
    }

    private static let shutDown = StoreError.unavailable("database pool shut down")

    /// Applies pending schema migrations (see ``Migrations``).
    public func migrate() async throws {
        try await Migrations.apply(on: self)
    }

    // MARK: Pool internals

    /// The pool's decisions (``ConnectionPoolMachine``), the continuations of the callers parked
    /// on them, and the shared reconnect back-off.
    struct PoolState {
        var machine: ConnectionPoolMachine<ConnectionSlot>
        var parked: [UInt64: CheckedContinuation<ConnectionSlot, any Error>] = [:]
        /// Consecutive failed connection attempts; drives the shared back-off.
        var connectFailures = 0
        /// No new connection attempt before this instant (shared back-off gate).
        var nextConnectAttempt: ContinuousClock.Instant?
        var lastConnectError = ""
    }

    private static func slot(_ grant: ConnectionPoolMachine<ConnectionSlot>.Grant) -> ConnectionSlot {
        switch grant {
        case .slot(let slot): slot
        case .open: ConnectionSlot()
        }
    }

    private func error(_ failure: ConnectionPoolMachine<ConnectionSlot>.Failure) -> StoreError {
        switch failure {
        case .timedOut: .unavailable("no database connection free within the timeout (pool of \(configuration.maxConnections))")
        case .shutdown: Self.shutDown
        }
    }

    /// A free connection at once, or the first one released to this caller before `deadline`.
    ///
    /// The deadline is a child task of this call (cancelled as soon as a
    /// connection comes), so no timer outlives its caller; a cancelled caller
    /// stops waiting at once.
    private func acquire(_ lane: DatabaseLane, deadline: ContinuousClock.Instant) async throws -> ConnectionSlot {
        switch state.withLock({ $0.machine.acquire(lane) }) {
        case .granted(let grant): return Self.slot(grant)
        case .shutdown: throw Self.shutDown
        case .wait(let id):
            return try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { [self] in
                    try? await Task.sleep(until: deadline, clock: .continuous)
                    expire(id)
                }
                let slot = try await park(id)
                group.cancelAll()
                return slot
            }
        }
    }

    /// Waits for waiter `id`'s connection (or failure), unless it was decided already.
    private func park(_ id: UInt64) async throws -> ConnectionSlot {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<ConnectionSlot, any Error>) in
            let decided = state.withLock { s -> Result<ConnectionSlot, StoreError>? in
                switch s.machine.park(id) {
                case .decided(let outcome): return outcome.map(Self.slot).mapError(error)
                case .unknown: return .failure(.unavailable("lost track of a database pool waiter"))
                case .suspend:
                    s.parked[id] = continuation
                    return nil
                }
            }
            if let decided { continuation.resume(with: decided.mapError { $0 as any Error }) }
        }
    }

    /// Waiter `id`'s deadline passed (or its caller was cancelled): it fails, unless it got a connection first.
    private func expire(_ id: UInt64) {
        let parked = state.withLock { s -> CheckedContinuation<ConnectionSlot, any Error>? in
            guard case .failParked(let id) = s.machine.expire(id) else { return nil }
            return s.parked.removeValue(forKey: id)
        }
        parked?.resume(throwing: error(.timedOut))
    }

    private func release(_ slot: ConnectionSlot, lane: DatabaseLane) {
        let (closing, resumed) = state.withLock { s -> (ConnectionSlot?, [(CheckedContinuation<ConnectionSlot, any Error>, ConnectionSlot)]) in
            switch s.machine.release(slot, lane: lane) {
            case .close(let slot): return (slot, [])
            case .resume(let grants):
                return (nil, grants.compactMap { grant in s.parked.removeValue(forKey: grant.id).map { ($0, Self.slot(grant.grant)) } })
            }
        }
        if let closing { threads.submit { _ in closing.connection = nil } }
        for (continuation, slot) in resumed { continuation.resume(returning: slot) }
    }

    /// Closes a slot's connection on the pool's threads.
    private func close(_ slot: ConnectionSlot) async {
        _ = try? await threads.runIfActive { slot.connection = nil }
    }

    private enum Attempt<T: Sendable>: Sendable {
        case done(T)
        case connectFailed(String)
        case backingOff(ContinuousClock.Instant)
    }

    /// Makes sure the slot holds a usable connection (reconnecting under the
    /// shared back-off until `deadline`), then runs `body` on one of the database's threads.
    private func run<T: Sendable>(
        on slot: ConnectionSlot, deadline: ContinuousClock.Instant,
        _ body: @escaping @Sendable (PostgresConnection) throws -> T
    ) async throws -> T {
        let url = self.url
        let connectTimeout = configuration.connectTimeoutSeconds
        let statementTimeout = configuration.statementTimeout
        do {
            while true {
                let attempt: Attempt<T> = try await onThread(slot) { holder in
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

    /// Runs `work` with the slot on one of the database's threads (libpq blocks).
    private func onThread<R: Sendable>(
        _ slot: ConnectionSlot, _ work: @escaping @Sendable (ConnectionSlot) throws -> R
    ) async throws -> R {
        do {
            return try await threads.runIfActive { try work(slot) }
        } catch is NIOThreadPoolError.ThreadPoolInactive {
            throw Self.shutDown
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

/// One pooled connection (or none yet): held by one caller at a time and
/// only touched on the database's threads, so it needs no lock of its own.
final class ConnectionSlot: @unchecked Sendable {
    /// Closed when replaced (``PostgresConnection`` closes in deinit).
    var connection: PostgresConnection?
}
