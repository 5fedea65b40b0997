import Synchronization

/// The driver of ``LoginThrottle``: one shared, locked throttle and the clock.
///
/// Refusals are 429 RATE_LIMITED with `Retry-After`, answered before any
/// bcrypt work, so a guesser costs the server almost nothing once limited.
final class LoginGuard: Sendable {
    private let throttle: Mutex<LoginThrottle>
    private let now: @Sendable () -> Duration

    init(perAccount: RateLimit, perAddress: RateLimit, now: (@Sendable () -> Duration)? = nil) {
        throttle = Mutex(LoginThrottle(perAccount: perAccount, perAddress: perAddress))
        let origin = ContinuousClock.now
        self.now = now ?? { ContinuousClock.now - origin }
    }

    /// Throws 429 when `address` (or `account`, for a login) has used up its attempts.
    func attempt(account: String?, address: String) throws(APIError) {
        let now = self.now()
        let decision = throttle.withLock { $0.attempt(account: account, address: address, now: now) }
        if case .limited(let wait) = decision {
            let what = account == nil ? "attempts from this address" : "login attempts for this account or from this address"
            throw APIError(.tooManyRequests, .rateLimited, "too many \(what); try again later").retryAfter(wait)
        }
    }

    func succeeded(account: String) {
        let now = self.now()
        throttle.withLock { $0.succeeded(account: account, now: now) }
    }
}
