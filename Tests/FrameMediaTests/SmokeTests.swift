import Foundation
import Testing
import FrameCore
@testable import FrameMedia

@Test func smokeH264() throws {
    let dir = try Fixtures.makeDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let path = try Fixtures.video(dir, "a.mp4", source: "testsrc2=size=160x120:rate=30:duration=5",
                                  encode: ["-c:v", "libx264", "-bf", "2", "-g", "30", "-pix_fmt", "yuv420p"])
    let info = try MediaProbe.probe(path: path)
    print(info)
    for rate in ["1", "0.1", "2.5", "1/3"] {
        let ref = try Fixtures.referenceDigests(path, rate: rate)
        let ours = try Fixtures.ourDigests(path, rate: Rational(parsing: rate)!, segmentSeconds: 1)
        print(rate, ref.count, ours.digests.count, ours.stats, ours.plan.segments.map { "\($0.firstSample)+\($0.sampleCount)" })
        #expect(ours.digests.map(\.md5) == ref)
    }
}
