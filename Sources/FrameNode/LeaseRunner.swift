import FrameWire

/// Runs the leases a coordinator grants; the node agent hands it every
/// work message and asks it for heartbeat figures.
///
/// The agent owns the connection; what happens to a lease (fetching bytes,
/// decoding, streaming frames) sits behind this seam.
public protocol LeaseRunner: Sendable {
    /// The runner's own background work (its decode threads' writes, its timers), for as long as
    /// the agent runs: the agent runs it as a child task and cancels it when it stops. A runner
    /// with none returns at once. Required, so that a wrapper cannot forget to pass it on.
    func run() async
    /// A new session is established: `send` writes to the coordinator.
    /// `resumed` is WELCOME's `resumedLeases`: continue those, abandon every
    /// other lease still held (without reporting it).
    func attach(send: @escaping @Sendable (Message) async throws -> Void, resumed: [LeaseRef]) async
    /// The session ended; in-flight work keeps running (up to its lease TTL)
    /// and keeps its results for the next session.
    func detach() async
    /// LEASE, READ_DATA, CANCEL or a non-fatal ERROR.
    func handle(_ message: Message) async
    /// Stop taking leases.
    func drain() async
    /// Leases still held (reported in HELLO after a reconnect).
    func heldLeases() async -> [LeaseRef]
    /// Figures for HEARTBEAT.
    func figures() async -> (activeLeases: Int, framesTotal: UInt64)
    /// The process is shutting down (SIGTERM): take no new lease, let the
    /// running ones finish for up to `grace`, then hand back the rest
    /// (SEGMENT_FAILED `SHUTTING_DOWN`, retryable). Returns how many were handed back.
    func shutDown(grace: Duration) async -> Int
}

extension LeaseRunner {
    /// For runners that hold no work of their own: just stop taking leases.
    public func shutDown(grace: Duration) async -> Int {
        await drain()
        return 0
    }
}

import FrameCore
