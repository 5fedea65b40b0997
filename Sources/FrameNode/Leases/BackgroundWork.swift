import Synchronization

/// Async work that decode threads and timers hand to the node's structured task tree.
///
/// Decode threads are plain threads (FFmpeg's I/O callbacks block) and cannot await; what they
/// need done asynchronously (a write to the coordinator, telling the runner a segment ended, the
/// lease-TTL timer after a drop) is submitted here and runs as a child task of ``run()``, which
/// the node agent runs for as long as it runs. Nothing is detached: when the agent stops, `run()`
/// cancels its children and waits for them. Every submission either runs or is refused exactly
/// once, so a thread waiting for its write is always released.
final class BackgroundWork: Sendable {
    typealias Work = @Sendable () async -> Void
    typealias Refusal = @Sendable () -> Void

    private struct Queued {
        var work: Work
        var refused: Refusal
    }

    private struct State {
        var next: UInt64 = 0
        var queued: [UInt64: Queued] = [:]
        var running = false
        var stopped = false
    }

    private let stream: AsyncStream<UInt64>
    private let input: AsyncStream<UInt64>.Continuation
    private let state = Mutex(State())

    init() {
        (stream, input) = AsyncStream.makeStream(of: UInt64.self)
    }

    /// Queues `work` for a child task of ``run()``. Once `run()` has ended, `refused` is called
    /// instead (at once, or for work still queued when it ended) and `work` never runs.
    /// Work submitted before `run()` starts waits for it.
    func submit(_ work: @escaping Work, refused: @escaping Refusal = {}) {
        let id: UInt64? = state.withLock { state in
            guard !state.stopped else { return nil }
            defer { state.next += 1 }
            state.queued[state.next] = Queued(work: work, refused: refused)
            return state.next
        }
        guard let id else { return refused() }
        input.yield(id)
    }

    /// Runs every submission as a child task until the calling task is cancelled; then refuses what
    /// is still queued, cancels the children and waits for them. A second call returns at once.
    func run() async {
        let first = state.withLock { state in
            defer { state.running = true }
            return !state.running && !state.stopped
        }
        guard first else { return }
        await withDiscardingTaskGroup { group in
            // The stream ends when the calling task is cancelled.
            for await id in stream {
                guard let queued = state.withLock({ $0.queued.removeValue(forKey: id) }) else { continue }
                group.addTask { await queued.work() }
            }
            // Refuse what is still queued and whatever comes from now on before cancelling what
            // runs, so a thread whose write is cancelled sees the node stopping, not a lost connection.
            let left = state.withLock { state in
                state.stopped = true
                defer { state.queued = [:] }
                return Array(state.queued.values)
            }
            input.finish()
            for queued in left { queued.refused() }
            group.cancelAll()
        }
    }

    /// Whether ``run()`` is ending or has ended (new work is refused).
    var isStopped: Bool { state.withLock { $0.stopped } }
}
