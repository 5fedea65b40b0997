import Synchronization

/// The decision half of ``BoundedWork``: at most `limit` pieces of work run at
/// once, at most `queueLimit` wait, and anything beyond is refused at once.
///
/// A plain value: each event returns what the driver must do, so the policy
/// is tested without threads or clocks.
struct AdmissionState: Sendable, Equatable {
    enum Arrival: Equatable { case run, wait, refuse }

    let limit: Int
    let queueLimit: Int
    private(set) var running = 0
    /// Waiting tickets, oldest first.
    private(set) var waiting: [UInt64] = []

    init(limit: Int, queueLimit: Int) {
        precondition(limit >= 1 && queueLimit >= 0)
        self.limit = limit
        self.queueLimit = queueLimit
    }

    mutating func arrive(_ ticket: UInt64) -> Arrival {
        if running < limit {
            running += 1
            return .run
        }
        guard waiting.count < queueLimit else { return .refuse }
        waiting.append(ticket)
        return .wait
    }

    /// One running piece finished; returns the waiter that takes its place (the count stays), if any.
    mutating func finish() -> UInt64? {
        guard !waiting.isEmpty else {
            running -= 1
            return nil
        }
        return waiting.removeFirst()
    }

    /// A waiter gave up (its task was cancelled); false if it was no longer waiting.
    mutating func abandon(_ ticket: UInt64) -> Bool {
        guard let i = waiting.firstIndex(of: ticket) else { return false }
        waiting.remove(at: i)
        return true
    }
}

/// Runs CPU-heavy work (bcrypt) with bounded concurrency and a bounded queue,
/// so that a burst of requests costs each of them a short wait or a quick
/// 503 SERVER_BUSY, instead of slowing every login tenfold by running them all
/// at once on a thread pool that uploads share.
final class BoundedWork: Sendable {
    private struct State {
        var admission: AdmissionState
        var nextTicket: UInt64 = 0
        var continuations: [UInt64: CheckedContinuation<Void, any Error>] = [:]
        /// Waiters handed a place before their continuation was stored.
        var granted: Set<UInt64> = []
        var completed = 0
    }

    private let state: Mutex<State>
    /// What a refused caller is told, and how long it should wait.
    let busy: APIError

    init(limit: Int, queueLimit: Int, busy: APIError) {
        state = Mutex(State(admission: AdmissionState(limit: limit, queueLimit: queueLimit)))
        self.busy = busy
    }

    /// Pieces running and waiting now (for tests and logs).
    var load: (running: Int, waiting: Int) {
        state.withLock { ($0.admission.running, $0.admission.waiting.count) }
    }

    /// Pieces of work run to the end so far.
    var completed: Int { state.withLock { $0.completed } }

    /// Runs `body` when a place is free; throws ``busy`` at once when the queue is full.
    func run<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        try await admit()
        defer { release() }
        return try await body()
    }

    private func admit() async throws {
        let (ticket, arrival) = state.withLock { s -> (UInt64, AdmissionState.Arrival) in
            s.nextTicket += 1
            return (s.nextTicket, s.admission.arrive(s.nextTicket))
        }
        switch arrival {
        case .run: return
        case .refuse: throw busy
        case .wait: break
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                enum Now { case wait, run, cancelled }
                let now: Now = state.withLock { s in
                    // Handed a place, or cancelled, before we got here: nothing to wait for.
                    if s.granted.remove(ticket) != nil { return .run }
                    guard s.admission.waiting.contains(ticket) else { return .cancelled }
                    s.continuations[ticket] = continuation
                    return .wait
                }
                switch now {
                case .wait: break
                case .run: continuation.resume()
                case .cancelled: continuation.resume(throwing: CancellationError())
                }
            }
        } onCancel: {
            let continuation = state.withLock { s -> CheckedContinuation<Void, any Error>? in
                guard s.admission.abandon(ticket) else { return nil }
                return s.continuations.removeValue(forKey: ticket)
            }
            continuation?.resume(throwing: CancellationError())
        }
    }

    private func release() {
        let next = state.withLock { s -> CheckedContinuation<Void, any Error>? in
            s.completed += 1
            guard let ticket = s.admission.finish() else { return nil }
            guard let waiter = s.continuations.removeValue(forKey: ticket) else {
                s.granted.insert(ticket)
                return nil
            }
            return waiter
        }
        next?.resume()
    }
}
