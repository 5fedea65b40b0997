/// Capped exponential backoff with full jitter for reconnecting to the coordinator.
///
/// Full jitter (a uniform delay between zero and the current ceiling) spreads
/// the reconnects of many nodes after a coordinator restart, so they do not
/// arrive in one synchronised wave. The ceiling starts at `initial`, doubles
/// after every failed attempt and never exceeds `maximum`; a successful
/// session resets it.
public struct ReconnectBackoff: Sendable {
    public let initial: Duration
    public let maximum: Duration
    public private(set) var ceiling: Duration

    public init(initial: Duration = .milliseconds(500), maximum: Duration = .seconds(10)) {
        self.initial = initial
        self.maximum = max(maximum, initial)
        self.ceiling = initial
    }

    /// The delay before the next attempt; raises the ceiling for the one after.
    public mutating func nextDelay<R: RandomNumberGenerator>(using rng: inout R) -> Duration {
        let ceilingMillis = max(1, ceiling.milliseconds)
        let delay = Duration.milliseconds(Int64.random(in: 0...ceilingMillis, using: &rng))
        ceiling = min(ceiling * 2, maximum)
        return delay
    }

    public mutating func nextDelay() -> Duration {
        var rng = SystemRandomNumberGenerator()
        return nextDelay(using: &rng)
    }

    /// Called after a successful session.
    public mutating func reset() { ceiling = initial }
}
