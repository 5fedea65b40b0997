import Testing
@testable import FrameCluster

@Suite struct ReconnectBackoffTests {
    @Test func ceilingDoublesUpToTheCapAndResets() {
        var backoff = ReconnectBackoff(initial: .milliseconds(500), maximum: .seconds(4))
        var rng = SystemRandomNumberGenerator()
        var ceilings: [Int64] = []
        for _ in 0..<6 {
            let ceiling = backoff.ceiling
            let delay = backoff.nextDelay(using: &rng)
            #expect(delay >= .zero && delay <= ceiling)
            ceilings.append(ceiling.milliseconds)
        }
        #expect(ceilings == [500, 1000, 2000, 4000, 4000, 4000])
        backoff.reset()
        #expect(backoff.ceiling == .milliseconds(500))
    }

    @Test func delaysAreJittered() {
        var backoff = ReconnectBackoff(initial: .seconds(10), maximum: .seconds(10))
        let delays = Set((0..<20).map { _ in backoff.nextDelay().milliseconds })
        #expect(delays.count > 5)
    }
}
