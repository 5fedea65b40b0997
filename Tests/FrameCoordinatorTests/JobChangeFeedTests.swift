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
    /// Two coordinators on one database: a change made on one reaches an event stream held on
    /// the other (LISTEN/NOTIFY), and is not echoed back to where it came from.
    @Test func aChangeOnOneCoordinatorReachesStreamsOnAnother() async throws {
        var logger = Logger(label: "test")
        logger.logLevel = .error
        let database = Database(url: try await TestDatabase.create(), logger: logger)
        try await database.migrate()
        let users = UserStore(database: database), jobs = JobStore(database: database)
        let owner = try await users.create(email: "owner@example.com", passwordHash: "x").id
        let spec = SegmentSpec(
            index: 0, streamIndex: 0, timeBase: Rational(1, 1000), decodeStartPTS: 0, startPTS: 0, endPTS: Int64.max,
            firstSample: 0, sampleCount: 10, rate: Rational(1, 1), originMicros: 0, keyframes: [Keyframe(pts: 0, pos: 0)])
        let job = try await jobs.create(NewJob(
            userID: owner, originalFilename: "a.mp4", ext: "mp4", sizeBytes: 1, fps: Rational(1, 1),
            output: OutputOptions(format: .jpeg, quality: 2), segments: [spec]))
        let hubA = EventHub(), hubB = EventHub()
        let onA = try hubA.subscribe(.owner(owner)), onB = try hubB.subscribe(.owner(owner))
        let feedA = JobChangeFeed(hub: hubA, database: database, logger: logger, coordinatorID: "coord-a")
        let feedB = JobChangeFeed(hub: hubB, database: database, logger: logger, coordinatorID: "coord-b")
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await feedA.run() }
            group.addTask { try await feedB.run() }
            // B's listener must be up before A announces (NOTIFY is not queued for later listeners).
            try await Task.sleep(for: .milliseconds(700))
            _ = try await jobs.cancel(id: job.id)
            feedA.changed(job.id)
            var onBIterator = onB.stream.makeAsyncIterator()
            guard case .event(let event)? = await onBIterator.next() else { Issue.record("nothing reached B"); return }
            #expect(event.name == "job" && event.data.contains("\"status\":\"CANCELLED\""))
            // A published its own change once; B did not send it back.
            try await Task.sleep(for: .milliseconds(1200))
            group.cancelAll()
        }
        var onAEvents = 0
        for await item in onA.stream { if case .event = item { onAEvents += 1 } }
        #expect(onAEvents == 1, "the change was echoed back to A")
    }
}
