import FrameCore
import FrameObjectStore
import FrameWire
import Foundation
import Testing
@testable import FrameCoordinator

/// `storage.s3.node_reads: direct`, coordinator side: which LEASE a node gets, and the presigned
/// URL's key and lifetime (no network: signing is local).
@Suite struct SourceURLSignerTests {
    static let client = try! S3Client(configuration: S3Configuration(
        endpoint: URL(string: "http://127.0.0.1:9000")!, region: "us-east-1", bucket: "frames", prefix: "p/", pathStyle: true,
        credentials: S3Credentials(accessKeyID: "AKID", secretAccessKey: "secret")))
    static let signer = SourceURLSigner(client: client, minimumLifetime: .seconds(3600),
                                        progressDeadline: ProgressDeadline(floor: .seconds(60), factor: 2))

    static func lease(mediaSeconds: Int64) -> Lease {
        let ref = LeaseRef(jobID: UUID(), segment: 2, epoch: 5)
        let spec = SegmentSpec(index: 2, streamIndex: 0, timeBase: Rational(1, 1000), decodeStartPTS: 0, startPTS: 0,
                               endPTS: mediaSeconds * 1000, firstSample: 0, sampleCount: 1, rate: Rational(1, 1),
                               originMicros: 0, keyframes: [])
        return Lease(lease: ref, leaseTTLMillis: 30_000, sourceSize: 100, formatHint: "mkv", segment: spec, options: OutputOptions())
    }

    @Test func aVersion1NodeGetsThePlainLease() {
        let lease = Self.lease(mediaSeconds: 5)
        #expect(Self.signer.message(for: lease, sourceExt: "mkv", nodeVersion: 1) == .lease(lease))
    }

    @Test func aVersion2NodeGetsTheSameLeaseWithAPresignedURLOfTheSourceObject() throws {
        let lease = Self.lease(mediaSeconds: 5)
        let before = Date()
        guard case .leaseURL(let direct) = Self.signer.message(for: lease, sourceExt: "mkv", nodeVersion: 2) else {
            Issue.record("no LEASE_URL"); return
        }
        #expect(direct.lease == lease)
        let url = try #require(URLComponents(string: direct.sourceURL))
        #expect(url.path == "/frames/p/uploads/\(lease.lease.jobID.uuidString.lowercased())/input.mkv")
        #expect(url.path.hasSuffix(ObjectKeys.upload(lease.lease.jobID, ext: "mkv")))
        #expect(url.queryItems?.first { $0.name == "X-Amz-Expires" }?.value == "3600")
        let expires = Date(timeIntervalSince1970: Double(direct.expiresAtMillis) / 1000)
        #expect(abs(expires.timeIntervalSince(before) - 3600) < 5)
    }

    @Test func theURLOutlivesTheLeasesProgressDeadlineUpToSevenDays() {
        // 5 s of media: the 1 h minimum. 1 h of media: 2 h deadline + 30 s TTL. A year: S3's 7 days.
        #expect(Self.signer.lifetime(for: Self.lease(mediaSeconds: 5).segment, ttl: .seconds(30)) == .seconds(3600))
        #expect(Self.signer.lifetime(for: Self.lease(mediaSeconds: 3600).segment, ttl: .seconds(30)) == .seconds(7230))
        #expect(Self.signer.lifetime(for: Self.lease(mediaSeconds: 365 * 86_400).segment, ttl: .seconds(30)) == .seconds(7 * 86_400))
    }
}
