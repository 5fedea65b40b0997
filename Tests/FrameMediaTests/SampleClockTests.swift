import Testing
import PropertyBased
import FrameCore
@testable import FrameMedia

@Suite("Sample clock")
struct SampleClockTests {
    @Test("rounds like av_rescale_rnd(AV_ROUND_NEAR_INF) for any inputs")
    func rescaleMatchesFFmpeg() async {
        await propertyCheck(count: 2000, input: Gen.int64(in: -(1 << 40)...(1 << 40)), Gen.int64(in: 1...(1 << 30)), Gen.int64(in: 1...(1 << 30))) { a, b, c in
            #expect(SampleClock.rescale(a, b, c) == SampleClock.ffmpegRescale(a, b, c))
        }
        #expect(SampleClock.rescale(1, 1, 2) == 1)
        #expect(SampleClock.rescale(-1, 1, 2) == -1)
        #expect(SampleClock.rescale(3, 1, 2) == 2)
    }

    @Test("fps=1 on 30 fps: slot boundaries fall at half seconds, so frame 14 is the first sample")
    func integerRate() throws {
        let clock = try SampleClock(rate: Rational(1, 1), timeBase: Rational(1, 30), originMicros: 0)
        #expect(clock.slot(14) == 0)
        #expect(clock.slot(15) == 1)   // 0.5 s rounds away from zero
        #expect(clock.slot(44) == 1)
        #expect(clock.slot(45) == 2)
        // 2.5 s of video: the tool ends at round(2.5) = 3 slots.
        #expect(clock.endSlot(lastPTS: 74, duration: 1) == 3)
    }

    @Test("decimal and fractional rates, and the container start time")
    func otherRates() throws {
        let tenth = try SampleClock(rate: Rational(parsing: "0.1")!, timeBase: Rational(1, 1000), originMicros: 0)
        #expect(tenth.slot(4999) == 0)
        #expect(tenth.slot(5000) == 1)
        let third = try SampleClock(rate: Rational(parsing: "1/3")!, timeBase: Rational(1, 90000), originMicros: 0)
        #expect(third.slot(90000 * 3 / 2 - 1) == 0)
        #expect(third.slot(90000 * 3 / 2) == 1)
        let shifted = try SampleClock(rate: Rational(5, 2), timeBase: Rational(1, 1000), originMicros: 1_000_000)
        #expect(shifted.originPTS == 1000)
        #expect(shifted.slot(1000) == 0)
        #expect(shifted.slot(1199) == 0)
        #expect(shifted.slot(1200) == 1)
        #expect(throws: MediaError.self) { try SampleClock(rate: Rational(0, 1), timeBase: Rational(1, 1000), originMicros: 0) }
    }
}
