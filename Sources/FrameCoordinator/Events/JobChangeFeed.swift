import FrameAPI
import FrameStore
import Foundation
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle

/// Carries "this job changed" from where jobs change (the scheduler, the ingestor) to the
/// ``EventHub``: ``changed(_:)`` only records the id and never waits, so the scheduler's hot
/// paths are not held up by PostgreSQL; the service loop reads each changed job once (ids are
/// coalesced: ten progress steps while a read is in flight become one) and publishes its
/// current record to the job's owner.
///
/// With several coordinators, a LISTEN/NOTIFY reader would call ``changed(_:)`` with the ids
/// other coordinators announce; nothing else changes. On graceful shutdown the hub is closed,
/// which ends every open event stream so they do not hold the HTTP server open.
public final class JobChangeFeed: Service, Sendable {
    let hub: EventHub
    let jobs: JobStore
    let logger: Logger
    private let pending = NIOLockedValueBox<Set<UUID>>([])
    private let wake: AsyncStream<Void>
    private let wakeContinuation: AsyncStream<Void>.Continuation

    public init(hub: EventHub, database: Database, logger: Logger) {
        self.hub = hub
        jobs = JobStore(database: database)
        self.logger = logger
        (wake, wakeContinuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// The job `id` changed (status, progress, error); its owner will hear of it.
    public func changed(_ id: UUID) {
        pending.withLockedValue { _ = $0.insert(id) }
        wakeContinuation.yield()
    }

    public func run() async throws {
        defer { hub.close() }
        for await _ in wake.cancelOnGracefulShutdown() {
            let ids = pending.withLockedValue { set in defer { set = [] }; return set }
            for id in ids {
                do {
                    if let job = try await jobs.get(id: id) { hub.publishJob(job) }
                } catch {
                    logger.warning("cannot read a changed job for its event", metadata: ["job": "\(id.uuidString.lowercased())", "error": "\(error)"])
                }
            }
        }
    }
}
