/// Runs `body`, cancelling it and throwing `timedOut(description)` when it takes longer than
/// `limit` (the description says what ran out and after how long).
///
/// One bounded call for every client that talks to a peer which may accept a connection and
/// never answer (webhooks, SMTP, the object store): such a peer then costs the caller `limit`,
/// never forever. Each caller names its own error, so its code and cause stay its own.
public func withTimeout<T: Sendable>(
    _ limit: Duration, _ what: String, timedOut: @escaping @Sendable (String) -> any Error,
    _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: limit)
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else {
            throw timedOut("\(what) timed out after \(limit)")
        }
        return value
    }
}
