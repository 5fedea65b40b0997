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

    @Test("a video without a keyframe index decodes from the start in one segment, still exact")
    func withoutIndex() throws {
        let dir = try Fixtures.makeDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = try Self.longVideo(dir)
        var info = try MediaProbe.probe(path: path)
        info.keyframes = []
        let plan = try SegmentPlanner.makePlan(info, rate: Rational(1, 1), segmentSeconds: 2)
        #expect(plan.segments.count == 1 && plan.segments[0].keyframes.isEmpty)
        var digests: [String] = []
        for decoder in [try SegmentDecoder(path: path)] {
            // Used once before, so the index-less run must rewind to the start.
            _ = try decoder.runDigests(try SegmentPlanner.plan(MediaProbe.probe(path: path), rate: Rational(1, 1), segmentSeconds: 2).last!) { _ in }
            _ = try decoder.runDigests(plan.segments[0]) { digests.append($0.md5) }
        }
        #expect(digests == (try Fixtures.referenceDigests(path, rate: "1")))
    }

    /// Decoded frames and digests over all segments with the given tuning.
    static func decode(_ path: String, rate: Rational, segmentSeconds: Double, tuning: SegmentWalk.Tuning) throws -> (Int, [String]) {
        let (stats, digests) = try decodeStats(path, rate: rate, segmentSeconds: segmentSeconds, tuning: tuning)
        return (stats.decodedFrames, digests)
    }

    /// Summed statistics and digests over all segments with the given tuning.
    static func decodeStats(_ path: String, rate: Rational, segmentSeconds: Double,
                            tuning: SegmentWalk.Tuning) throws -> (SegmentStats, [String]) {
        let plan = try SegmentPlanner.plan(MediaProbe.probe(path: path), rate: rate, segmentSeconds: segmentSeconds)
        let decoder = try SegmentDecoder(path: path)
        decoder.tuning = tuning
        var stats = SegmentStats()
        var digests: [String] = []
        for spec in plan { stats.add(try decoder.runDigests(spec) { digests.append($0.md5) }) }
        return (stats, digests)
    }

    /// GOP shapes for the tail skip: open and closed GOPs (H.264 non-IDR I-frames, HEVC CRA with
    /// RASL pictures), with and without B-frames, scene cuts making GOPs irregular.
    /// Without B-frames a picture leaves the decoder as soon as it is fed, so the walk already
    /// stops at the sample: nothing to save there, but the frames must still be right.
    static let tailSkipCases: [VideoCase] = [
        .scenes("h264 open gop, 3 b-frames, keyint 30", "tail-h264-og.mkv", seconds: 12, VideoCase.x264(bf: 3, keyint: 30, openGOP: true)),
        .scenes("h264 closed gop, 3 b-frames, keyint 24", "tail-h264-cg.mp4", seconds: 12, VideoCase.x264(bf: 3, keyint: 24, openGOP: false)),
        .scenes("h264 closed gop, no b-frames, keyint 30", "tail-h264-b0.mp4", seconds: 12, VideoCase.x264(bf: 0, keyint: 30, openGOP: false)),
        .scenes("hevc open gop (CRA), 3 b-frames, keyint 30", "tail-hevc-og.mkv", seconds: 12, VideoCase.x265(bf: 3, keyint: 30, openGOP: true)),
        .scenes("hevc closed gop, 2 b-frames, keyint 24", "tail-hevc-cg.mp4", seconds: 12, VideoCase.x265(bf: 2, keyint: 24, openGOP: false)),
    ]

    /// Rates whose samples land on every kind of picture (I, P, reference and plain B, an open
    /// GOP's leading B before the next I) and at every distance from the next keyframe.
    static let tailSkipRates = ["0.1", "0.37", "0.7", "1", "1.3", "3"]

    @Test("skipping a GOP's tail after its last sample decodes less and picks ffmpeg's frames", arguments: tailSkipCases)
    func gopTailSkip(_ video: VideoCase) throws {
        let dir = try Fixtures.makeDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = try video.make(in: dir)
        let reorders = !video.name.contains("no b-frames")
        var skippedAtSparseRates = 0
        var decodedAtSparseRates = (on: 0, off: 0)
        for rate in Self.tailSkipRates {
            let reference = try Fixtures.referenceDigests(path, rate: rate)
            let r = Rational(parsing: rate)!
            for segmentSeconds in [1.0, 1000] {
                let on = try Self.decodeStats(path, rate: r, segmentSeconds: segmentSeconds, tuning: .init())
                let off = try Self.decodeStats(path, rate: r, segmentSeconds: segmentSeconds, tuning: .init(skipGOPTails: false))
                #expect(on.1 == reference, "\(video.name) at \(rate), \(segmentSeconds) s segments: frames")
                #expect(off.1 == reference, "\(video.name) at \(rate), \(segmentSeconds) s segments: frames without the skip")
                #expect(on.0.decodedFrames <= off.0.decodedFrames,
                        "\(video.name) at \(rate): \(on.0.decodedFrames) decoded vs \(off.0.decodedFrames) without the skip")
                #expect(off.0.gopTailsSkipped == 0)
                if r.doubleValue <= 1 && segmentSeconds > 1 {
                    // Sparse samples: nearly every sample ends its GOP's useful part.
                    decodedAtSparseRates.on += on.0.decodedFrames
                    decodedAtSparseRates.off += off.0.decodedFrames
                    skippedAtSparseRates += on.0.gopTailsSkipped
                }
            }
        }
        if reorders {
            #expect(skippedAtSparseRates > 0)
            #expect(decodedAtSparseRates.on < decodedAtSparseRates.off,
                    "\(video.name): \(decodedAtSparseRates.on) decoded vs \(decodedAtSparseRates.off) without the skip")
        }
    }

    @Test("skipping non-reference frames and deciding from the lookahead each save decoding, same frames")
    func tuningSavesWork() throws {
        let dir = try Fixtures.makeDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = try Self.longVideo(dir)
        let reference = try Fixtures.referenceDigests(path, rate: "1")
        let all = try Self.decode(path, rate: Rational(1, 1), segmentSeconds: 1, tuning: .init())
        let noSkip = try Self.decode(path, rate: Rational(1, 1), segmentSeconds: 1, tuning: .init(skipNonReference: false))
        let noLookahead = try Self.decode(path, rate: Rational(1, 1), segmentSeconds: 1, tuning: .init(decideFromLookahead: false))
        #expect(all.1 == reference && noSkip.1 == reference && noLookahead.1 == reference)
        #expect(all.0 < noSkip.0, "\(all.0) vs \(noSkip.0) without skip_frame")
        #expect(all.0 < noLookahead.0, "\(all.0) vs \(noLookahead.0) without lookahead decisions")
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
