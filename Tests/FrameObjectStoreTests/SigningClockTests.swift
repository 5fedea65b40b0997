import Foundation
import NIOConcurrencyHelpers
import NIOCore
import Testing
@testable import FrameObjectStore
import FrameTestSupport

/// A request's signature and its `x-amz-date` header come from one clock reading: read twice,
/// a second boundary between the reads made the store refuse the request (SignatureDoesNotMatch),
/// seen as a rare flake of the live tests. Here the clock moves a second at every reading.
@Suite(.timeLimit(.minutes(1))) struct SigningClockTests {
    @Test func aClockThatTicksBetweenReadingsStillSignsWhatIsSent() async throws {
        guard let configuration = S3LiveStore.configuration(bucket: S3LiveStore.uniqueBucket("clock")) else {
            print("SigningClockTests skipped: \(S3LiveStore.skipReason ?? "")")
            return
        }
        let start = Date()
        let readings = NIOLockedValueBox(0)
        let client = try S3Client(configuration: configuration, now: {
            let n = readings.withLockedValue { n in
                defer { n += 1 }
                return n
            }
            return start.addingTimeInterval(TimeInterval(n))
        })
        try await client.createBucket()
        try await client.putObject("k", body: ByteBuffer(string: "tick"))
        #expect(String(buffer: try await client.getObject("k")) == "tick")
        #expect(readings.withLockedValue { $0 } >= 3)
    }
}
