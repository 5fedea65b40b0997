/// Which callers a pooled connection serves: the scheduler's lease traffic, which at a thousand
/// busy nodes can keep every connection busy, runs in the bulk lane; everything else (uploads,
/// logins, job views) in the interactive one, which the bulk lane can never crowd out.
public enum DatabaseLane: Sendable, Hashable {
    case interactive
    case bulk
}

/// The database pool's decisions, apart from its effects (libpq, threads, continuations, timers):
/// a value type that takes an event (acquire, park, expire, release, shutdown) and says what the
/// driver, ``Database``, must do. Modelled on postgres-nio's `PoolStateMachine`; tested alone
/// with plain values (`ConnectionPoolMachineTests`).
///
/// Connections are opened lazily up to `maxConnections`. The bulk lane may hold at most
/// `bulkLimit` of them at once, so `maxConnections - bulkLimit` are always left for interactive
/// callers; when a connection comes back it goes to the oldest interactive waiter first, then to
/// the oldest bulk waiter the limit admits. A waiter is registered before its caller suspends, so
/// a connection (or a deadline, or the shutdown) that comes in between is kept as its outcome.
struct ConnectionPoolMachine<Slot> {
    /// What a caller gets: an idle connection, or the right to open a new one.
    enum Grant {
        case slot(Slot)
        case open
    }

    enum Failure: Error, Equatable {
        case timedOut
        case shutdown
    }

    enum Acquire {
        case granted(Grant)
        /// Register done: park under this id.
        case wait(UInt64)
        case shutdown
    }

    enum Park {
        /// Decided before the caller suspended: do not suspend.
        case decided(Result<Grant, Failure>)
        /// Suspend; a later ``release(_:lane:)``, ``expire(_:)`` or ``shutdown()`` names this id.
        case suspend
        /// No such waiter (a bug in the driver).
        case unknown
    }

    enum Expire {
        case nothing
        /// The parked caller fails with a timeout.
        case failParked(UInt64)
    }

    enum Release {
        /// The pool is shut down: close the connection.
        case close(Slot)
        /// Resume these parked callers with their grants (possibly none).
        case resume([(id: UInt64, grant: Grant)])
    }

    struct Waiter {
        let id: UInt64
        let lane: DatabaseLane
        var parked = false
        var outcome: Result<Grant, Failure>?
    }

    let maxConnections: Int
    let bulkLimit: Int
    private(set) var idle: [Slot] = []
    private(set) var open = 0
    private(set) var bulkHeld = 0
    private(set) var waiters: [Waiter] = []
    private(set) var isShutdown = false
    private var nextID: UInt64 = 0

    /// `reservedForInteractive` connections are never held by the bulk lane (at least one is
    /// always left to it).
    init(maxConnections: Int, reservedForInteractive: Int = 0) {
        self.maxConnections = max(1, maxConnections)
        self.bulkLimit = max(1, self.maxConnections - max(0, reservedForInteractive))
    }

    mutating func acquire(_ lane: DatabaseLane) -> Acquire {
        if isShutdown { return .shutdown }
        if let grant = grant(lane) { return .granted(grant) }
        nextID += 1
        waiters.append(Waiter(id: nextID, lane: lane))
        return .wait(nextID)
    }

    mutating func park(_ id: UInt64) -> Park {
        guard let i = waiters.firstIndex(where: { $0.id == id }) else { return .unknown }
        if let outcome = waiters[i].outcome {
            waiters.remove(at: i)
            return .decided(outcome)
        }
        waiters[i].parked = true
        return .suspend
    }

    /// Waiter `id`'s deadline passed (or its caller was cancelled): it fails, unless it was served first.
    mutating func expire(_ id: UInt64) -> Expire {
        guard let i = waiters.firstIndex(where: { $0.id == id }), waiters[i].outcome == nil else { return .nothing }
        guard waiters[i].parked else {
            waiters[i].outcome = .failure(.timedOut)
            return .nothing
        }
        waiters.remove(at: i)
        return .failParked(id)
    }

    /// A caller of `lane` is done with `slot`.
    mutating func release(_ slot: Slot, lane: DatabaseLane) -> Release {
        if lane == .bulk { bulkHeld -= 1 }
        if isShutdown {
            open -= 1
            return .close(slot)
        }
        idle.append(slot)
        var resumed: [(id: UInt64, grant: Grant)] = []
        while let i = nextServed(), let grant = grant(waiters[i].lane) {
            if waiters[i].parked {
                resumed.append((waiters[i].id, grant))
                waiters.remove(at: i)
            } else {
                waiters[i].outcome = .success(grant)
            }
        }
        return .resume(resumed)
    }

    /// Ends the pool: the idle connections to close and the parked callers to fail; callers not
    /// parked yet find `.shutdown` when they park; connections in use close when they come back.
    mutating func shutdown() -> (close: [Slot], failParked: [UInt64]) {
        isShutdown = true
        let closing = idle
        idle.removeAll()
        open -= closing.count
        var failed: [UInt64] = []
        for i in waiters.indices where waiters[i].outcome == nil {
            if waiters[i].parked { failed.append(waiters[i].id) } else { waiters[i].outcome = .failure(.shutdown) }
        }
        waiters.removeAll { $0.parked && $0.outcome == nil }
        return (closing, failed)
    }

    // MARK: Rules

    /// A connection for `lane` now, if one is idle or may be opened and the lane's limit allows.
    private mutating func grant(_ lane: DatabaseLane) -> Grant? {
        if lane == .bulk, bulkHeld >= bulkLimit { return nil }
        let grant: Grant
        if let slot = idle.popLast() {
            grant = .slot(slot)
        } else if open < maxConnections {
            open += 1
            grant = .open
        } else {
            return nil
        }
        if lane == .bulk { bulkHeld += 1 }
        return grant
    }

    /// The waiter a free connection goes to: the oldest undecided interactive one, else the oldest
    /// undecided bulk one while the bulk lane is under its limit.
    private func nextServed() -> Int? {
        if let i = waiters.firstIndex(where: { $0.outcome == nil && $0.lane == .interactive }) { return i }
        guard bulkHeld < bulkLimit else { return nil }
        return waiters.firstIndex(where: { $0.outcome == nil && $0.lane == .bulk })
    }
}
