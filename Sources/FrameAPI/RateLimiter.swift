/// `attempts` per `period`, refilled smoothly (a token bucket of `attempts`
/// tokens gaining one every `period / attempts`): a burst of `attempts` is
/// allowed, then one attempt per `period / attempts`.
public struct RateLimit: Sendable, Equatable {
    public var attempts: Int
    public var period: Duration

    public init(attempts: Int, per period: Duration) {
        precondition(attempts >= 1 && period > .zero)
        self.attempts = attempts
        self.period = period
    }

    /// Time for one token to come back.
    var interval: Duration { period / attempts }
}

/// One token bucket per key (an account, a client address), as a plain value:
/// time comes in as the `now` argument (a monotonic offset), so tests drive
/// it with a test clock and the driver with `ContinuousClock`.
///
/// Memory is bounded by `maxKeys`: past it, buckets that have refilled to full
/// (they carry no information) are dropped first, then the fullest ones.
struct RateLimiter<Key: Hashable & Sendable>: Sendable {
    enum Decision: Equatable {
        case allowed
        /// Refused; one attempt becomes possible after this long.
        case limited(retryAfter: Duration)
    }

    struct Bucket: Sendable, Equatable {
        /// Fractional tokens: refill is continuous.
        var tokens: Double
        var at: Duration
    }

    let limit: RateLimit
    let maxKeys: Int
    private(set) var buckets: [Key: Bucket] = [:]

    init(_ limit: RateLimit, maxKeys: Int = 100_000) {
        self.limit = limit
        self.maxKeys = maxKeys
    }

    /// The bucket of `key` brought up to `now`.
    private func refilled(_ key: Key, now: Duration) -> Bucket {
        guard var bucket = buckets[key] else { return Bucket(tokens: Double(limit.attempts), at: now) }
        let elapsed = max(.zero, now - bucket.at)
        bucket.tokens = min(Double(limit.attempts), bucket.tokens + elapsed / limit.interval)
        bucket.at = now
        return bucket
    }

    /// Whether `key` may make an attempt now; an allowed attempt takes a token.
    mutating func take(_ key: Key, now: Duration) -> Decision {
        var bucket = refilled(key, now: now)
        guard bucket.tokens >= 1 else {
            return .limited(retryAfter: limit.interval * (1 - bucket.tokens))
        }
        bucket.tokens -= 1
        store(key, bucket, now: now)
        return .allowed
    }

    /// Whether `key` could make an attempt now, without taking a token.
    func check(_ key: Key, now: Duration) -> Decision {
        let bucket = refilled(key, now: now)
        return bucket.tokens >= 1 ? .allowed : .limited(retryAfter: limit.interval * (1 - bucket.tokens))
    }

    /// Gives back the token of an attempt that should not count (a successful login).
    mutating func refund(_ key: Key, now: Duration) {
        guard buckets[key] != nil else { return }
        var bucket = refilled(key, now: now)
        bucket.tokens = min(Double(limit.attempts), bucket.tokens + 1)
        store(key, bucket, now: now)
    }

    private mutating func store(_ key: Key, _ bucket: Bucket, now: Duration) {
        buckets[key] = bucket
        if buckets.count > maxKeys { prune(now: now) }
    }

    /// Drops buckets that are full again, then (if still over) the fullest, down to 3/4 of `maxKeys`.
    mutating func prune(now: Duration) {
        let full = Double(limit.attempts)
        buckets = buckets.filter { key, _ in refilled(key, now: now).tokens < full }
        let target = maxKeys * 3 / 4
        guard buckets.count > target else { return }
        let fullest = buckets.keys.sorted { refilled($0, now: now).tokens > refilled($1, now: now).tokens }
        for key in fullest.prefix(buckets.count - target) { buckets[key] = nil }
    }
}

/// The login and registration policy: every attempt counts against the
/// client's address, every login also against the account (the normalized
/// e-mail, whether or not such an account exists, so the answer says nothing
/// about which do). A successful login gives its account token back, so a
/// user who logs in often is never locked out by their own successes; failed
/// guesses from many addresses still exhaust the account's bucket.
struct LoginThrottle: Sendable {
    var accounts: RateLimiter<String>
    var addresses: RateLimiter<String>

    init(perAccount: RateLimit, perAddress: RateLimit, maxKeys: Int = 100_000) {
        accounts = RateLimiter(perAccount, maxKeys: maxKeys)
        addresses = RateLimiter(perAddress, maxKeys: maxKeys)
    }

    /// One attempt from `address`, at `account` when it is a login. A refused attempt takes no token.
    mutating func attempt(account: String?, address: String, now: Duration) -> RateLimiter<String>.Decision {
        if let account, case .limited(let wait) = accounts.check(account, now: now) {
            return .limited(retryAfter: wait)
        }
        let byAddress = addresses.take(address, now: now)
        guard byAddress == .allowed else { return byAddress }
        if let account { _ = accounts.take(account, now: now) }
        return .allowed
    }

    /// The login at `account` succeeded.
    mutating func succeeded(account: String, now: Duration) {
        accounts.refund(account, now: now)
    }
}
