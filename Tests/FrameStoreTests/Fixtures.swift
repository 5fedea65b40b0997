import FrameCore
import Foundation
@testable import FrameStore

/// Small builders for users, jobs and nodes, so lease tests read as scenarios.
struct Fixtures {
    let db: Database
    var users: UserStore { UserStore(database: db) }
    var jobs: JobStore { JobStore(database: db) }
    var nodes: NodeStore { NodeStore(database: db) }

    func user(_ email: String = "u\(UUID().uuidString.prefix(8))@example.com") async throws -> UserRecord {
        try await users.create(email: email, passwordHash: "x", name: "test")
    }

    static func specs(_ count: Int, samplesEach: UInt32 = 5) -> [SegmentSpec] {
        var specs: [SegmentSpec] = []
        for i in 0..<count {
            let start = Int64(i) * 5000
            let end: Int64 = i == count - 1 ? Int64.max : start + 5000
            let first = UInt32(i) * samplesEach
            specs.append(SegmentSpec(
                index: UInt32(i), streamIndex: 0, timeBase: Rational(1, 1000), decodeStartPTS: start,
                startPTS: start, endPTS: end, firstSample: first, sampleCount: samplesEach, rate: Rational(1, 1),
                originMicros: 0, keyframes: [Keyframe(pts: start, pos: Int64(i) * 1000)]))
        }
        return specs
    }

    func job(
        for user: UserRecord, segments: Int = 4, maxAttempts: Int = 3, labels: [String: String] = [:],
        maxNodeLosses: Int = 5
    ) async throws -> JobRecord {
        try await jobs.create(NewJob(
            userID: user.id, originalFilename: "clip.mp4", ext: "mp4", sizeBytes: 12345, fps: Rational(1, 1),
            output: OutputOptions(format: .jpeg, quality: 3), durationSeconds: Double(segments) * 5,
            labelRequirement: labels, maxAttempts: maxAttempts, maxNodeLosses: maxNodeLosses,
            segments: Self.specs(segments)))
    }

    @discardableResult
    func node(_ name: String, labels: [String: String] = [:]) async throws -> NodeRecord {
        try await nodes.register(name: name, softwareVersion: "test", slots: 4, labels: labels, address: "127.0.0.1:1")
    }
}
