import FrameCore
import FrameStore
import Foundation
import FrameTestSupport
import Logging
import Testing
@testable import FrameCoordinator

/// A job that could only end with an empty ZIP (a 3-second video at one frame every 10 s) is
/// refused at ingest with NO_FRAMES, naming a rate that does yield a frame; nothing is committed.
@Suite struct NoFramesTests {
    @Test func aRateThatPicksNoFrameIsRefusedWithARateThatWould() async throws {
        let url = try await TestDatabase.create()
        var logger = Logger(label: "no-frames")
        logger.logLevel = .error
        let database = Database(url: url, logger: logger)
        try await database.migrate()
        var failure: (any Error)?
        do { try await check(database) } catch { failure = error }
        await database.shutdown()
        if let failure { throw failure }
    }

    func check(_ database: Database) async throws {
        let owner = try await UserStore(database: database).create(email: "nf@example.com", passwordHash: "x").id
        let ingestor = MediaIngestor(database: database, segmentSeconds: 2, maxAttempts: 3)
        let video = try Fixtures.video(seconds: 3, name: "short.mp4")
        func ingest(_ rate: Rational) async throws -> JobRecord {
            try await ingestor.ingest(
                jobID: UUID(), file: video, originalFilename: "short.mp4", fileExtension: "mp4", sizeBytes: 1, owner: owner,
                rate: rate, output: OutputOptions())
        }
        do {
            _ = try await ingest(Rational(1, 10))
            Issue.record("a 3 s video at 1/10 fps was accepted")
        } catch {
            let coded = error.asFrameFlowError
            #expect(coded.code == .noFrames)
            // The rule of the fps filter: the output ends before round(3 s x R), so R = 1/6 is the lowest 1/k giving one.
            #expect(coded.message.contains("fps=1/6"), "\(coded.message)")
        }
        #expect(try await JobStore(database: database).list(userID: owner).isEmpty)
        let job = try await ingest(Rational(1, 6))
        #expect(job.frameCount == 1)
        #expect(ErrorCode.noFrames.isRetryable == false)
    }
}
