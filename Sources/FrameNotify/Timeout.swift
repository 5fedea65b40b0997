/// Runs `body`, cancelling it and throwing when it takes longer than `limit`.
///
/// Every delivery is bounded so that a receiver that accepts a connection and
/// never answers costs one slot of the dispatcher for `limit`, never forever.
func withTimeout<T: Sendable>(_ limit: Duration, _ what: String, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: limit)
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else {
            throw NotifyError("\(what) timed out after \(limit)")
        }
        return value
    }
}
