import FrameCore
import Foundation
import Testing
@testable import FrameStore

/// The notification outbox: rows come with the final status change, are
/// claimed once, and record every attempt.
@Suite struct NotificationStoreTests {
    @Test func failingOrCompletingAJobEnqueuesOneRowPerChannel() async throws {
        try await TestDatabase.withFresh { db, _ in
            let f = Fixtures(db: db)
            let user = try await f.user()
            let outbox = NotificationStore(database: db)
            let failed = try await f.job(for: user)
            _ = try await f.jobs.fail(id: failed.id, code: .decodeFailed, message: "corrupt")
            let rows = try await outbox.list(jobID: failed.id)
            #expect(rows.map(\.channel).sorted() == ["email", "webhook"])
            #expect(rows.allSatisfy { $0.event == "failed" && $0.state == "pending" && $0.attempts == 0 })
            // Failing again changes nothing, so it announces nothing.
            _ = try await f.jobs.fail(id: failed.id, code: .decodeFailed, message: "again")
            #expect(try await outbox.list(jobID: failed.id).count == 2)
            // A cancelled job is not announced.
            let cancelled = try await f.job(for: user)
            _ = try await f.jobs.cancel(id: cancelled.id)
            #expect(try await outbox.list(jobID: cancelled.id).isEmpty)
        }
    }

    @Test func claimHoldsRowsAndAttemptsAreRecorded() async throws {
        try await TestDatabase.withFresh { db, _ in
            let f = Fixtures(db: db)
            let user = try await f.user()
            let job = try await f.job(for: user)
            _ = try await f.jobs.fail(id: job.id, code: .decodeFailed, message: "corrupt")
            let outbox = NotificationStore(database: db)
            let due = try await outbox.claimDue(limit: 10, hold: .seconds(60))
            #expect(due.count == 2)
            #expect(due.allSatisfy { $0.ownerEmail == user.email && $0.errorCode == "DECODE_FAILED" && $0.status == .failed })
            // Held: a second claim (another dispatcher) gets nothing.
            #expect(try await outbox.claimDue(limit: 10, hold: .seconds(60)).isEmpty)

            let email = try #require(due.first { $0.channel == "email" })
            let hook = try #require(due.first { $0.channel == "webhook" })
            try await outbox.markFailed(id: email.id, error: "connection refused", retryAfter: .zero)
            try await outbox.markFailed(id: hook.id, error: "HTTP 500", retryAfter: nil)
            let again = try await outbox.claimDue(limit: 10, hold: .seconds(60))
            #expect(again.map(\.id) == [email.id])
            #expect(again.first?.attempts == 1)
            try await outbox.markDelivered(id: email.id)
            let rows = try await outbox.list(jobID: job.id)
            let delivered = try #require(rows.first { $0.channel == "email" })
            #expect(delivered.state == "delivered")
            #expect(delivered.attempts == 2)
            #expect(delivered.lastError == nil)
            let gaveUp = try #require(rows.first { $0.channel == "webhook" })
            #expect(gaveUp.state == "gave_up")
            #expect(gaveUp.attempts == 1)
            #expect(gaveUp.lastError == "HTTP 500")
        }
    }
}
