import FrameAPI
import FrameCore
import FrameStore
import FrameTestSupport
import Foundation
import Logging
import Testing
@testable import FrameCoordinator

/// Job changes reach their owner's event stream (and nobody else's) through the feed.
@Suite struct JobChangeFeedTests {
    @Test func aChangedJobIsPublishedToItsOwnerOnly() async throws {
        var logger = Logger(label: "test")
        logger.logLevel = .error
        let database = Database(url: try await TestDatabase.create(), logger: logger)
        try await database.migrate()
        let users = UserStore(database: database), jobs = JobStore(database: database)
        let owner = try await users.create(email: "owner@example.com", passwordHash: "x").id
        let other = try await users.create(email: "other@example.com", passwordHash: "x").id
        let spec = SegmentSpec(
            index: 0, streamIndex: 0, timeBase: Rational(1, 1000), decodeStartPTS: 0, startPTS: 0, endPTS: Int64.max,
            firstSample: 0, sampleCount: 10, rate: Rational(1, 1), originMicros: 0, keyframes: [Keyframe(pts: 0, pos: 0)])
        let job = try await jobs.create(NewJob(
            userID: owner, originalFilename: "a.mp4", ext: "mp4", sizeBytes: 1, fps: Rational(1, 1),
            output: OutputOptions(format: .jpeg, quality: 2), segments: [spec]))
        let hub = EventHub()
        let mine = try hub.subscribe(.owner(owner)), theirs = try hub.subscribe(.owner(other))
        let feed = JobChangeFeed(hub: hub, database: database, logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await feed.run() }
            // A burst of changes to one job is read once or a few times, never lost.
            for _ in 0..<5 { feed.changed(job.id) }
            var iterator = mine.stream.makeAsyncIterator()
            guard case .event(let first)? = await iterator.next() else { Issue.record("no event"); return }
            #expect(first.name == "job")
            #expect(first.data.contains(job.id.uuidString.lowercased()))
            #expect(first.data.contains("\"status\":\"QUEUED\""))
            _ = try await jobs.cancel(id: job.id)
            feed.changed(job.id)
            var sawCancelled = false
            while !sawCancelled, case .event(let event)? = await iterator.next() {
                sawCancelled = event.data.contains("\"status\":\"CANCELLED\"")
            }
            #expect(sawCancelled)
            group.cancelAll()
        }
        // The feed closed the hub on its way out, so the other user's stream has ended: drain it.
        var leaked: [StreamItem] = []
        for await item in theirs.stream { leaked.append(item) }
        #expect(leaked.isEmpty)
    }
}
