import Foundation
import Testing
@testable import FrameObjectStore

/// A request's `x-amz-date` is the date it was signed with, however the clock moves meanwhile
/// (two readings straddling a second made the store answer SignatureDoesNotMatch at random).
@Suite struct S3SigningClockTests {
    /// A clock that moves one second every time it is read.
    final class TickingClock: @unchecked Sendable {
        private let lock = NSLock()
        private var t = Date(timeIntervalSince1970: 1_700_000_000)
        func read() -> Date { lock.withLock { defer { t += 1 }; return t } }
    }

    @Test func theSentDateIsTheSignedDate() throws {
        let credentials = S3Credentials(accessKeyID: "AK", secretAccessKey: "SK")
        let c = S3Configuration(endpoint: URL(string: "http://127.0.0.1:8080")!, region: "us-east-1", bucket: "media",
                                prefix: "ff/", credentials: credentials)
        let clock = TickingClock()
        let client = try S3Client(configuration: c, now: { clock.read() })
        let (head, _) = client.signedHead("PUT", key: "a.zip", payloadHash: SigV4.emptyPayloadHash, bodyLength: 0)
        let sent = try #require(head.headers.first(name: "x-amz-date"))
        let format = DateFormatter()
        format.locale = Locale(identifier: "en_US_POSIX")
        format.timeZone = TimeZone(identifier: "UTC")
        format.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        let date = try #require(format.date(from: sent))
        let again = SigV4(region: "us-east-1").sign(
            SigV4Request(method: "PUT", path: "/media/ff/a.zip", headers: [
                (name: "host", value: "127.0.0.1:8080"), (name: "x-amz-content-sha256", value: SigV4.emptyPayloadHash),
            ]),
            payloadHash: SigV4.emptyPayloadHash, credentials: credentials, date: date)
        #expect(head.headers.first(name: "authorization") == again.authorization)
    }
}
