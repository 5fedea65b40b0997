import Foundation
import Synchronization
import Testing
import FrameCore
@testable import FrameMedia

@Suite("Segment decoder")
struct SegmentDecoderTests {
    /// 12 s at 30 fps with 1 s GOPs and B-frames: enough keyframes to skip between.
    static func longVideo(_ dir: URL) throws -> String {
        try VideoCase.lavfi("gop", "gop.mp4", seconds: 12, ["-c:v", "libx264", "-bf", "3", "-g", "30", "-keyint_min", "30", "-sc_threshold", "0"]).make(in: dir)
    }

    @Test("decodes far fewer frames than the video has at low rates (seeks, skips non-reference frames)")
    func decodesOnlyWhatSamplesNeed() throws {
        let dir = try Fixtures.makeDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = try Self.longVideo(dir)
        let frames = try MediaProbe.probe(path: path).frameCount
        let tenth = try Fixtures.ourDigests(path, rate: Rational(1, 10), segmentSeconds: 1000)
        #expect(tenth.digests.count == 1)
        #expect(tenth.stats.decodedFrames < 40, "one sample needs at most one GOP, got \(tenth.stats.decodedFrames)")
        let one = try Fixtures.ourDigests(path, rate: Rational(1, 1), segmentSeconds: 1000)
        #expect(one.digests.count == 12)
        #expect(one.stats.decodedFrames < frames * 2 / 3, "skipping should save work: \(one.stats.decodedFrames) of \(frames)")
        #expect(one.stats.seeks >= 2)
    }

    @Test("cancellation stops the segment promptly with CANCELLED")
    func cancellation() throws {
        let dir = try Fixtures.makeDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = try Self.longVideo(dir)
        let info = try MediaProbe.probe(path: path)
        let spec = try SegmentPlanner.plan(info, rate: Rational(5, 1), segmentSeconds: 1000)[0]
        let stop = Atomic<Bool>(false)
        let decoder = try SegmentDecoder(path: path)
        var emitted = 0
        #expect { _ = try decoder.run(spec, options: OutputOptions(), isCancelled: { stop.load(ordering: .relaxed) }) { _ in
            emitted += 1
            stop.store(true, ordering: .relaxed)
        } } throws: { ($0 as? MediaError)?.code == .cancelled }
        #expect(emitted == 1)
        // The same decoder still works afterwards.
        var count = 0
        _ = try decoder.run(spec, options: OutputOptions(format: .jpeg)) { _ in count += 1 }
        #expect(count == Int(spec.sampleCount))
    }

    @Test("an emit error stops the run and keeps its code")
    func emitErrorPropagates() throws {
        let dir = try Fixtures.makeDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = try Self.longVideo(dir)
        let spec = try SegmentPlanner.plan(MediaProbe.probe(path: path), rate: Rational(1, 1))[0]
        #expect { _ = try SegmentDecoder(path: path).run(spec, options: OutputOptions()) { _ in
            throw FrameFlowError(.storageFull, "disk full")
        } } throws: { ($0 as? MediaError)?.code == .storageFull }
    }

    @Test("segments decoded in any order by one decoder give the same frames")
    func reuseAcrossSegments() throws {
        let dir = try Fixtures.makeDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = try Self.longVideo(dir)
        let info = try MediaProbe.probe(path: path)
        let plan = try SegmentPlanner.makePlan(info, rate: Rational(2, 1), segmentSeconds: 2)
        let decoder = try SegmentDecoder(path: path)
        var byIndex: [UInt32: String] = [:]
        for spec in plan.segments.reversed() {
            _ = try decoder.runDigests(spec) { byIndex[$0.sampleIndex] = $0.md5 }
        }
        let reference = try Fixtures.referenceDigests(path, rate: "2")
        #expect((0..<UInt32(reference.count)).map { byIndex[$0] ?? "" } == reference)
    }
}
