import FrameCore

/// Runs `body`, cancelling it and throwing a ``NotifyError`` when it takes longer than `limit`.
///
/// Every delivery is bounded so that a receiver that accepts a connection and
/// never answers costs one slot of the dispatcher for `limit`, never forever.
func withTimeout<T: Sendable>(_ limit: Duration, _ what: String, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await FrameCore.withTimeout(limit, what, timedOut: { NotifyError($0) }, body)
}
