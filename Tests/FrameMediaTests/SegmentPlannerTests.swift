import Testing
import PropertyBased
import FrameCore
@testable import FrameMedia

/// A random video layout: frames (presentation timestamps, durations), which are keyframes,
/// a time base, a start time and a rate, derived from one seed.
struct Layout: CustomStringConvertible {
    var info: MediaInfo
    var frames: [(pts: Int64, duration: Int64)]
    var rate: Rational
    var segmentSeconds: Double
    var description: String { "\(frames.count) frames tb=\(info.timeBase) rate=\(rate) seg=\(segmentSeconds) start=\(info.startTimeMicros) keys=\(info.keyframes.count)" }

    init(seed: UInt64) {
        var rng = SplitMix(seed)
        let timeBases = [Rational(1, 1000), Rational(1, 90000), Rational(1, 15360), Rational(1, 30), Rational(1001, 30000), Rational(1, 25)]
        let tb = timeBases[Int(rng.next() % UInt64(timeBases.count))]
        let rates = [Rational(1, 1), Rational(1, 10), Rational(5, 2), Rational(1, 3), Rational(30000, 1001), Rational(24, 1), Rational(7, 3), Rational(1, 60)]
        rate = rng.next() % 4 == 0 ? Rational(Int32(rng.next() % 50 + 1), Int32(rng.next() % 20 + 1)) : rates[Int(rng.next() % UInt64(rates.count))]
        let count = Int(rng.next() % 400) + 1
        let typical = max(Int64(1), Int64(Double(tb.den) / Double(tb.num) / Double(rng.next() % 50 + 1)))
        let variable = rng.next() % 2 == 0
        var pts = Int64(rng.next() % 5000) - 1000
        var frames: [(Int64, Int64)] = []
        var keys: [Keyframe] = []
        let keyEvery = Int(rng.next() % 40) + 1
        let noIndex = rng.next() % 10 == 0
        for i in 0..<count {
            let d = variable ? max(1, typical / 2 + Int64(rng.next() % UInt64(typical * 2))) : typical
            frames.append((pts, d))
            if !noIndex && (i % keyEvery == 0 || rng.next() % 30 == 0) { keys.append(Keyframe(pts: pts, pos: Int64(i) * 1000)) }
            pts += d
        }
        self.frames = frames
        segmentSeconds = [0.5, 1, 2, 10, 0.01][Int(rng.next() % 5)]
        let startMicros = rng.next() % 3 == 0 ? Int64(rng.next() % 3_000_000) - 1_000_000 : 0
        info = MediaInfo(
            container: "test", durationSeconds: 1, startTimeMicros: startMicros, streamIndex: 0, codec: "h264",
            width: 16, height: 16, rotation: 0, timeBase: tb, frameRate: Rational(0, 1), isVariableFrameRate: variable,
            frameCount: count, firstPTS: frames[0].0, lastPTS: frames.last!.0, lastDuration: frames.last!.1,
            keyframes: keys, containerIndexKeyframes: 0)
    }

    /// What FFmpeg's fps filter outputs, simulated frame by frame: the index of the source
    /// frame shown by each output slot (the filter's drop/duplicate loop with EOF).
    func simulateFFmpeg() throws -> [Int] {
        let clock = try SampleClock(rate: rate, timeBase: info.timeBase, originMicros: info.startTimeMicros)
        let slots = frames.map { clock.slot($0.pts) }
        let eof = clock.endSlot(lastPTS: frames.last!.pts, duration: frames.last!.duration)
        var out: [Int] = []
        var next = slots[0]
        var i = 0
        while true {
            // Drop the buffered frame while the following one also fits the next slot.
            if i + 1 < frames.count && slots[i + 1] <= next { i += 1; continue }
            if i + 1 >= frames.count && eof <= next { break }
            out.append(i)
            next += 1
        }
        return out
    }
}

struct SplitMix {
    var state: UInt64
    init(_ seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E3779B97F4A7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58476D1CE4E5B9
        z = (z ^ (z >> 27)) &* 0x94D049BB133111EB
        return z ^ (z >> 31)
    }
}

@Suite("Segment planner")
struct SegmentPlannerTests {
    @Test("segments cover every sample exactly once, in order, and own their samples' frames")
    func partitionProperty() async {
        await propertyCheck(count: 400, input: Gen.uint64(in: 0...UInt64.max)) { seed in
            let layout = Layout(seed: seed)
            do {
                let truth = try layout.simulateFFmpeg()
                let plan = try SegmentPlanner.makePlan(layout.info, rate: layout.rate, segmentSeconds: layout.segmentSeconds)
                #expect(Int(plan.totalSamples) == truth.count, "\(layout)")
                #expect(try SegmentPlanner.sampleCount(layout.info, rate: layout.rate) == plan.totalSamples)
                var expected: UInt32 = 0
                for (n, spec) in plan.segments.enumerated() {
                    #expect(spec.index == UInt32(n))
                    #expect(spec.firstSample == expected, "\(layout)")
                    expected += spec.sampleCount
                    #expect(spec.sampleCount > 0 || plan.segments.count == 1, "no empty leases")
                    if n > 0 {
                        #expect(layout.info.keyframes.contains { $0.pts == spec.startPTS }, "boundary on a keyframe")
                        #expect(plan.segments[n - 1].endPTS == spec.startPTS)
                    }
                    #expect(spec.keyframes.allSatisfy { $0.pts >= spec.startPTS && $0.pts < spec.endPTS })
                    // Each sample's frame (by the simulated filter) lies inside its segment.
                    for sample in spec.firstSample..<(spec.firstSample + spec.sampleCount) {
                        let pts = layout.frames[truth[Int(sample)]].pts
                        #expect(pts >= spec.startPTS && pts < spec.endPTS, "\(layout) sample \(sample)")
                    }
                }
                #expect(expected == plan.totalSamples)
                #expect(plan.segments.last?.endPTS == Int64.max)
                if layout.info.keyframes.isEmpty { #expect(plan.segments.count == 1) }
            } catch {
                Issue.record("\(layout): \(error)")
            }
        }
    }

    @Test("segment length follows segmentSeconds on a regular keyframe grid")
    func segmentLength() throws {
        let layout = Layout(seed: 7)
        var info = layout.info
        info.timeBase = Rational(1, 1000)
        info.firstPTS = 0
        info.lastPTS = 59_960
        info.lastDuration = 40
        info.startTimeMicros = 0
        info.keyframes = stride(from: Int64(0), to: 60_000, by: 2000).map { Keyframe(pts: $0, pos: $0) }
        let plan = try SegmentPlanner.makePlan(info, rate: Rational(1, 1), segmentSeconds: 10)
        #expect(plan.segments.map(\.startPTS) == [0, 10_000, 20_000, 30_000, 40_000, 50_000])
        #expect(plan.segments.map(\.sampleCount) == [10, 10, 10, 10, 10, 10])
        #expect(plan.totalSamples == 60)
        // At one frame per minute, 10 s segments would be empty: they merge into one.
        #expect(try SegmentPlanner.plan(info, rate: Rational(1, 60), segmentSeconds: 10).count == 1)
    }
}
