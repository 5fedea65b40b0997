import FrameCore
import FrameWire
import Foundation
import Synchronization
import Testing
@testable import FrameNode

/// The node's bridge from decode threads and timers to structured tasks: work runs as children
/// of `run()`, every submission runs or is refused exactly once, and stopping releases a thread
/// that waits for its write instead of leaving it blocked.
@Suite struct BackgroundWorkTests {
    final class Log: Sendable {
        private let entries = Mutex<[String]>([])
        func add(_ entry: String) { entries.withLock { $0.append(entry) } }
        var all: [String] { entries.withLock { $0 } }
    }

    static func eventually(_ what: String, _ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while !condition() {
            guard ContinuousClock.now < deadline else { Issue.record("not within 10 s: \(what)"); return }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    @Test func workSubmittedBeforeAndDuringTheRunRuns() async throws {
        let background = BackgroundWork()
        let log = Log()
        background.submit({ log.add("early") }, refused: { log.add("early refused") })
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await background.run() }
            try await Self.eventually("the early work ran") { log.all == ["early"] }
            background.submit({ log.add("late") }, refused: { log.add("late refused") })
            try await Self.eventually("the late work ran") { log.all.count == 2 }
            #expect(!background.isStopped)
            group.cancelAll()
        }
        #expect(log.all == ["early", "late"])
        #expect(background.isStopped)
    }

    @Test func stoppingCancelsRunningWorkAndWaitsForIt() async throws {
        let background = BackgroundWork()
        let log = Log()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await background.run() }
            background.submit {
                log.add("started")
                do { try await Task.sleep(for: .seconds(3600)) } catch { log.add("cancelled") }
            }
            try await Self.eventually("the work started") { log.all == ["started"] }
            group.cancelAll()
        }
        // run() returned only after its child ended.
        #expect(log.all == ["started", "cancelled"])
    }

    @Test func afterTheRunEverySubmissionIsRefusedAtOnceAndASecondRunDoesNothing() async throws {
        let background = BackgroundWork()
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await background.run() }
            group.cancelAll()
        }
        let log = Log()
        background.submit({ log.add("ran") }, refused: { log.add("refused") })
        #expect(log.all == ["refused"])
        await background.run()  // returns at once
        #expect(log.all == ["refused"])
    }

    /// A decode thread blocks until its message is written; the write never completes (a
    /// coordinator that stopped reading). When the node stops, the thread gets CANCELLED instead
    /// of waiting for ever: before, the write ran in a detached Task nobody cancelled.
    @Test func aDecodeThreadWaitingForItsWriteIsReleasedWhenTheNodeStops() async throws {
        let background = BackgroundWork()
        let writing = Log()
        let outbox = LeaseOutbox(send: { _ in
            writing.add("write")
            try await Task.sleep(for: .seconds(3600))
        }, background: background)
        let outcome = Log()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await background.run() }
            let thread = Thread {
                do {
                    try outbox.deliver(.heartbeat(Heartbeat(sequence: 1, activeLeases: 0, framesTotal: 0)))
                    outcome.add("delivered")
                } catch {
                    outcome.add((error as? FrameFlowError)?.code.name ?? "\(error)")
                }
            }
            thread.start()
            try await Self.eventually("the write started") { writing.all == ["write"] }
            group.cancelAll()
        }
        try await Self.eventually("the thread was released") { !outcome.all.isEmpty }
        #expect(outcome.all == ["CANCELLED"])
    }
}
