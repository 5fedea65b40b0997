import FrameAPI
import FrameStore
import Foundation
import Logging
import Synchronization
import ServiceLifecycle

/// Carries "this job changed" from where jobs change (the scheduler, the ingestor) to the
/// ``EventHub``: ``changed(_:)`` only records the id and never waits, so the scheduler's hot
/// paths are not held up by PostgreSQL; the service loop reads each changed job once (ids are
/// coalesced: ten progress steps while a read is in flight become one) and publishes its
/// current record to the job's owner.
///
/// With several coordinators (a `coordinatorID` given), the ids changed here are also sent
/// with PostgreSQL NOTIFY on ``channel`` (payload `<coordinator> <job id>`, batched), and a
/// dedicated LISTEN connection (``PostgresListener``, on its own thread) hands the ids other
/// coordinators announce to the same loop: a browser sees every change whichever coordinator
/// it talks to, read from the database like a local one. A broken listening connection is
/// reopened after a second; changes announced meanwhile are missed (the next change of the
/// same job, or a reload, shows the current state). On graceful shutdown the hub is closed,
/// which ends every open event stream so they do not hold the HTTP server open.
///
/// A job a peer announced that is now finished (completed, cancelled or failed there) is also handed, as
/// read, to ``peerEndings``: the scheduler stops its own nodes' leases of it.
public final class JobChangeFeed: Service, Sendable {
    let hub: EventHub
    let jobs: JobStore
    let logger: Logger
    /// The NOTIFY channel coordinators announce job changes on.
    public static let channel = "frameflow_job_changes"
    private let pending = Mutex<Set<UUID>>([])
    /// Changed here, to be announced to the other coordinators.
    private let outbound = Mutex<Set<UUID>>([])
    let database: Database
    /// Present with several coordinators: relay changes through LISTEN/NOTIFY.
    let coordinatorID: String?
    /// Ids heard from other coordinators since the last round.
    private let fromPeers = Mutex<Set<UUID>>([])
    private let peerEndingsInput: AsyncStream<JobRecord>.Continuation
    /// Finished jobs heard from other coordinators, for the scheduler (one consumer).
    public let peerEndings: AsyncStream<JobRecord>
    private let wake: AsyncStream<Void>
    private let wakeContinuation: AsyncStream<Void>.Continuation

    public init(hub: EventHub, database: Database, logger: Logger, coordinatorID: String? = nil) {
        self.hub = hub
        self.database = database
        self.coordinatorID = coordinatorID
        jobs = JobStore(database: database)
        self.logger = logger
        (wake, wakeContinuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        // Bounded: only finished jobs go in, and the scheduler drains it as fast as they come.
        (peerEndings, peerEndingsInput) = AsyncStream<JobRecord>.makeStream(bufferingPolicy: .bufferingNewest(4096))
    }

    /// The job `id` changed (status, progress, error); its owner will hear of it.
    public func changed(_ id: UUID) {
        pending.withLock { _ = $0.insert(id) }
        if coordinatorID != nil { outbound.withLock { _ = $0.insert(id) } }
        wakeContinuation.yield()
    }

    /// Another coordinator announced that job `id` changed: publish it here, without announcing it again.
    func heardFromPeer(_ id: UUID) {
        pending.withLock { _ = $0.insert(id) }
        fromPeers.withLock { _ = $0.insert(id) }
        wakeContinuation.yield()
    }

    public func run() async throws {
        defer { hub.close() }
        await withDiscardingTaskGroup { group in
            if let me = coordinatorID {
                group.addTask { await self.listenToPeers(me: me) }
            }
            await publish()
            group.cancelAll()
        }
    }

    /// Reads other coordinators' announcements until cancelled, reopening a broken connection.
    private func listenToPeers(me: String) async {
        while !Task.isCancelled {
            do {
                let listener = try await database.listen(to: [Self.channel])
                do {
                    while !Task.isCancelled {
                        // Short waits: cancellation is seen between them.
                        for note in try await listener.next(timeout: .milliseconds(500)) {
                            let parts = note.payload.split(separator: " ", maxSplits: 1).map(String.init)
                            guard parts.count == 2, parts[0] != me, let id = UUID(uuidString: parts[1]) else { continue }
                            heardFromPeer(id)
                        }
                    }
                } catch {
                    await listener.close()
                    throw error
                }
                await listener.close()
            } catch {
                logger.warning("job change listener failed; reopening", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }

    private func publish() async {
        for await _ in wake.cancelOnGracefulShutdown() {
            let ids = pending.withLock { set in defer { set = [] }; return set }
            let heard = fromPeers.withLock { set in defer { set = [] }; return set }
            let announce = outbound.withLock { set in defer { set = [] }; return set }
            if let me = coordinatorID, !announce.isEmpty {
                do {
                    try await database.notify(
                        channel: Self.channel, payloads: announce.map { "\(me) \($0.uuidString.lowercased())" }.sorted())
                } catch {
                    logger.warning("cannot announce job changes to other coordinators", metadata: [
                        "jobs": "\(announce.count)", "error": "\(error)",
                    ])
                }
            }
            for id in ids {
                do {
                    if let job = try await jobs.get(id: id) {
                        hub.publishJob(job)
                        if heard.contains(id), job.status.isFinished { peerEndingsInput.yield(job) }
                    }
                } catch {
                    logger.warning("cannot read a changed job for its event", metadata: ["job": "\(id.uuidString.lowercased())", "error": "\(error)"])
                }
            }
        }
    }
}

/// The scheduler's job changes reach the browsers' event streams through the feed.
extension JobChangeFeed: JobChangeObserver {
    public func jobChanged(_ change: JobChange) { changed(change.jobID) }
}
