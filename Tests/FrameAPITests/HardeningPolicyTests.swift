@testable import FrameAPI
import FrameCore
import FrameStore
import Foundation
import Hummingbird
import Testing

/// The decision values behind the HTTP hardening, driven with plain values and a test clock.
@Suite("Hardening policies")
struct HardeningPolicyTests {
    // MARK: Control characters

    @Test(arguments: ["\u{0}", "\u{1}", "\t", "\n", "\r", "\u{7F}", "\u{85}", "\u{9F}", "\u{202E}", "\u{2066}"])
    func controlCharactersAreRefused(_ c: String) {
        #expect(InputText.firstRefused(in: "abc\(c)def") != nil, "\(c.unicodeScalars.first!.value)")
        #expect(throws: APIError.self) { try InputText.check("abc\(c)", field: "x") }
    }

    @Test func ordinaryTextPasses() throws {
        for text in ["Str0ng!pass", "Élodie Łukasz 東京", "clip (1).mp4", "a b", "emoji 🎬", "\u{A0}nbsp"] {
            #expect(InputText.firstRefused(in: text) == nil, "\(text)")
        }
    }

    @Test func refusalNamesTheFieldAndTheCharacter() {
        let error = InputText.refusal(field: "email", "\u{0}")
        #expect(error.status == .unprocessableContent)
        #expect(error.code == .validationFailed)
        #expect(error.detail.contains("email") && error.detail.contains("U+0000"))
    }

    @Test func jsonStringsAreCheckedWherever_theyAre() throws {
        let decoder = ValidatingJSONDecoder()
        struct Body: Decodable { var email: String; var extra: [String: [String]]? }
        let ok = try decoder.decode(Body.self, from: Data(#"{"email":"a@b.example"}"#.utf8))
        #expect(ok.email == "a@b.example")
        for (json, field) in [
            (#"{"email":"a@b.example\u0000evil"}"#, "email"),
            (#"{"email":"a","extra":{"k":["fine","bad\u001b"]}}"#, "extra.k[1]"),
            (#"{"email":"a","bad\u0000key":1}"#, "a key in the body"),
        ] {
            do {
                _ = try decoder.decode(Body.self, from: Data(json.utf8))
                Issue.record("accepted \(json)")
            } catch let error as APIError {
                #expect(error.code == .validationFailed)
                #expect(error.detail.contains(field), "\(error.detail)")
            }
        }
        // A raw control byte inside a string is not JSON, whatever a lenient parser would make of it.
        var raw = Data(#"{"email":"a"#.utf8)
        raw.append(0)
        raw.append(contentsOf: Array(#"b"}"#.utf8))
        #expect(throws: APIError.self) { _ = try decoder.decode(Body.self, from: raw) }
    }

    // MARK: bcrypt input

    @Test func passwordsBcryptWouldTruncateAreRefused() async throws {
        let hasher = PasswordHasher(cost: 4)
        await #expect(throws: APIError.self) { _ = try await hasher.hash("Abc1!\u{0}anything") }
        await #expect(throws: APIError.self) { _ = try await hasher.verify("Abc1!\u{0}x", hash: hasher.decoyHash) }
        await #expect(throws: APIError.self) { _ = try await hasher.hash(String(repeating: "Aa1!", count: 19)) }
        let hash = try await hasher.hash(String(repeating: "x", count: 72))
        #expect(try await hasher.verify(String(repeating: "x", count: 72), hash: hash))
    }

    // MARK: Rate limits

    static func seconds(_ s: Double) -> Duration { .milliseconds(Int64(s * 1000)) }

    @Test func aBucketAllowsItsBurstThenOneAttemptPerInterval() {
        var limiter = RateLimiter<String>(RateLimit(attempts: 3, per: .seconds(30)))
        for _ in 0..<3 { #expect(limiter.take("a", now: .zero) == .allowed) }
        guard case .limited(let wait) = limiter.take("a", now: .zero) else {
            Issue.record("fourth attempt allowed"); return
        }
        #expect(wait == .seconds(10), "one token per 10 s")
        #expect(limiter.take("b", now: .zero) == .allowed, "keys are independent")
        guard case .limited(let later) = limiter.take("a", now: .seconds(4)) else {
            Issue.record("allowed before the token is back"); return
        }
        #expect(later == .seconds(6))
        #expect(limiter.take("a", now: .seconds(10)) == .allowed)
        #expect(limiter.take("a", now: .seconds(10)) != .allowed)
        // After a full period the whole burst is back, and no more than that.
        for _ in 0..<3 { #expect(limiter.take("a", now: .seconds(1000)) == .allowed) }
        #expect(limiter.take("a", now: .seconds(1000)) != .allowed)
    }

    @Test func memoryIsBoundedAndFullBucketsGoFirst() {
        var limiter = RateLimiter<Int>(RateLimit(attempts: 2, per: .seconds(10)), maxKeys: 100)
        for key in 0..<100 { _ = limiter.take(key, now: .zero) }
        _ = limiter.take(0, now: .zero)  // key 0 is now empty: the one worth remembering
        for key in 100..<1000 { _ = limiter.take(key, now: .seconds(100)) }
        #expect(limiter.buckets.count <= 100)
        // Everything from time 0 had refilled by time 100, so it was forgotten first.
        #expect(limiter.buckets[0] == nil)
    }

    @Test func loginsCountPerAccountAndPerAddress() {
        var throttle = LoginThrottle(
            perAccount: RateLimit(attempts: 3, per: .seconds(300)), perAddress: RateLimit(attempts: 5, per: .seconds(60)))
        // Three failures on one account from three addresses lock the account for everyone.
        for address in ["10.0.0.1", "10.0.0.2", "10.0.0.3"] {
            #expect(throttle.attempt(account: "bob@x.example", address: address, now: .zero) == .allowed)
        }
        #expect(throttle.attempt(account: "bob@x.example", address: "10.0.0.4", now: .zero) != .allowed)
        // One address trying many accounts runs out of its own budget (5), refused attempts cost nothing.
        for i in 0..<4 { #expect(throttle.attempt(account: "u\(i)@x.example", address: "10.0.0.1", now: .zero) == .allowed) }
        guard case .limited(let wait) = throttle.attempt(account: "u9@x.example", address: "10.0.0.1", now: .zero) else {
            Issue.record("sixth attempt from one address allowed"); return
        }
        #expect(wait == .seconds(12))
        #expect(throttle.attempt(account: nil, address: "10.0.0.9", now: .zero) == .allowed)
    }

    @Test func successfulLoginsDoNotLockTheAccount() {
        var throttle = LoginThrottle(
            perAccount: RateLimit(attempts: 2, per: .seconds(300)), perAddress: RateLimit(attempts: 100, per: .seconds(60)))
        for _ in 0..<10 {
            #expect(throttle.attempt(account: "alice@x.example", address: "10.0.0.1", now: .zero) == .allowed)
            throttle.succeeded(account: "alice@x.example", now: .zero)
        }
    }

    // MARK: Bounded bcrypt work

    @Test func admissionRunsQueuesAndRefuses() {
        var state = AdmissionState(limit: 2, queueLimit: 1)
        #expect(state.arrive(1) == .run)
        #expect(state.arrive(2) == .run)
        #expect(state.arrive(3) == .wait)
        #expect(state.arrive(4) == .refuse)
        #expect(state.finish() == 3, "the waiter takes the freed place")
        #expect(state.running == 2)
        #expect(state.arrive(5) == .wait)
        let abandoned = state.abandon(5)
        let again = state.abandon(5)
        #expect(abandoned && !again)
        #expect(state.finish() == nil)
        #expect(state.running == 1)
    }

    @Test func boundedWorkRefusesAtOnceWhenTheQueueIsFull() async throws {
        let busy = APIError(.serviceUnavailable, .serverBusy, "busy")
        let work = BoundedWork(limit: 1, queueLimit: 1, busy: busy)
        let gate = AsyncGate()
        let clock = ContinuousClock()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await work.run { await gate.wait() } }
            try await waitUntil { work.load == (1, 0) }
            group.addTask { try await work.run {} }
            try await waitUntil { work.load == (1, 1) }
            let start = clock.now
            await #expect(throws: APIError.self) { try await work.run {} }
            #expect(clock.now - start < .milliseconds(100), "refused without waiting")
            await gate.open()
            try await group.waitForAll()
        }
        #expect(work.load == (0, 0))
    }

    @Test func aCancelledWaiterLeavesTheQueue() async throws {
        let work = BoundedWork(limit: 1, queueLimit: 4, busy: APIError(.serviceUnavailable, .serverBusy, "busy"))
        let gate = AsyncGate()
        let holder = Task { try await work.run { await gate.wait() } }
        try await waitUntil { work.load == (1, 0) }
        let waiter = Task { try await work.run {} }
        try await waitUntil { work.load == (1, 1) }
        waiter.cancel()
        await #expect(throws: CancellationError.self) { try await waiter.value }
        #expect(work.load == (1, 0))
        await gate.open()
        try await holder.value
        #expect(work.load == (0, 0))
    }

    // MARK: Quotas

    @Test func quotaRefusesJobsAndBytesPastTheLimits() {
        let quota = UploadQuota(maxStoredBytes: 1000, maxActiveJobs: 2)
        let none = UserUsage(storedBytes: 0, activeJobs: 0)
        #expect(quota.refusal(held: UserUsage(storedBytes: 900, activeJobs: 1), adding: UserUsage(storedBytes: 100, activeJobs: 1)) == nil)
        #expect(quota.refusal(held: UserUsage(storedBytes: 900, activeJobs: 0), adding: UserUsage(storedBytes: 101, activeJobs: 0))?
            .code == .storageQuotaExceeded)
        #expect(quota.refusal(held: UserUsage(storedBytes: 0, activeJobs: 2), adding: UserUsage(storedBytes: 0, activeJobs: 1))?
            .code == .jobQuotaExceeded)
        #expect(UploadQuota().refusal(held: UserUsage(storedBytes: .max / 2, activeJobs: 1_000_000), adding: UserUsage(storedBytes: 1, activeJobs: 1)) == nil)
        #expect(quota.refusal(held: UserUsage(storedBytes: 5000, activeJobs: 9), adding: none) == nil, "adding nothing never fails")
    }

    @Test func concurrentUploadsOfOneUserShareTheQuota() {
        let ledger = UploadLedger()
        let user = UUID()
        let quota = UploadQuota(maxStoredBytes: 1000, maxActiveJobs: 5)
        let committed = UserUsage(storedBytes: 200, activeJobs: 0)
        var a = UploadReservation(ledger: ledger, user: user, committed: committed, quota: quota)
        var b = UploadReservation(ledger: ledger, user: user, committed: committed, quota: quota)
        #expect(throws: Never.self) { try a.addBytes(500) }
        #expect(throws: APIError.self) { try b.addBytes(301) }
        #expect(throws: Never.self) { try b.addBytes(300) }
        #expect(ledger.inFlight(user).storedBytes == 800)
        a.release()
        b.release()
        #expect(ledger.inFlight(user) == UserUsage(storedBytes: 0, activeJobs: 0))
    }

    // MARK: Routes

    @Test func routeTableFindsTheMethodsOfAPath() {
        let router = Hummingbird.Router(context: APIRequestContext.self)
        router.get("videos") { _, _ in "" }
        router.post("videos") { _, _ in "" }
        router.get("videos/:id/download") { _, _ in "" }
        let table = RouteTable()
        table.load(router.routes)
        #expect(table.methods(at: "/videos").map(\.rawValue) == ["GET", "POST"])
        #expect(table.methods(at: "/videos/").map(\.rawValue) == ["GET", "POST"])
        #expect(table.methods(at: "/videos/123/download").map(\.rawValue) == ["GET"])
        #expect(table.methods(at: "/nothing").isEmpty)
        #expect(table.methods(at: "/videos/123").isEmpty)
    }
}

/// Lets a test hold a piece of work open until it says go.
actor AsyncGate {
    private var isOpen = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func wait() async {
        if isOpen { return }
        await withCheckedContinuation { waiters.append($0) }
    }

    func open() {
        isOpen = true
        waiters.forEach { $0.resume() }
        waiters = []
    }
}

/// Polls `condition` for up to five seconds.
func waitUntil(_ condition: @Sendable () -> Bool) async throws {
    let deadline = ContinuousClock.now + .seconds(5)
    while !condition() {
        guard ContinuousClock.now < deadline else {
            Issue.record("condition not met within 5 s")
            return
        }
        try await Task.sleep(for: .milliseconds(2))
    }
}
