import HummingbirdBcrypt
import NIOPosix

/// bcrypt hashing and verification, run on NIO's blocking thread pool through
/// a ``BoundedWork`` gate.
///
/// One bcrypt at cost 10 takes tens of milliseconds of pure CPU; run inline it
/// would stall an event loop (or a cooperative-pool thread) for every login,
/// and run without a bound, twenty parallel guessers slow every login (and the
/// upload writes that share the pool) tenfold. The gate lets `concurrency`
/// run, queues up to `queueLimit` and answers the rest 503 SERVER_BUSY at once.
///
/// bcrypt reads its input as a C string of at most 72 bytes: a NUL would end
/// the password early and bytes past 72 would be ignored, so either is refused
/// here (422) rather than silently hashed as a shorter password.
public struct PasswordHasher: Sendable {
    /// bcrypt's limit on the password it reads.
    public static let maxPasswordBytes = 72

    public let cost: UInt8
    let threadPool: NIOThreadPool
    let gate: BoundedWork
    /// A valid hash (at the same cost) of a random password, verified against when the e-mail is
    /// unknown so that "no such user" and "wrong password" take the same time.
    let decoyHash: String

    public init(cost: UInt8 = 10, threadPool: NIOThreadPool = .singleton, concurrency: Int = 2, queueLimit: Int = 64) {
        self.cost = cost
        self.threadPool = threadPool
        gate = BoundedWork(
            limit: max(1, concurrency), queueLimit: max(0, queueLimit),
            busy: APIError(.serviceUnavailable, .serverBusy, "too many passwords are being checked at once; retry shortly")
                .retryAfter(.seconds(1)))
        decoyHash = Bcrypt.hash("decoy-\(UInt64.random(in: .min ... .max))", cost: cost)
    }

    public func hash(_ password: String) async throws -> String {
        try Self.checkRepresentable(password)
        let cost = self.cost
        return try await gate.run { try await threadPool.runIfActive { Bcrypt.hash(password, cost: cost) } }
    }

    public func verify(_ password: String, hash: String) async throws -> Bool {
        try Self.checkRepresentable(password)
        return try await gate.run { try await threadPool.runIfActive { Bcrypt.verify(password, hash: hash) } }
    }

    /// Refuses what bcrypt would truncate: a NUL anywhere, or more than 72 bytes.
    static func checkRepresentable(_ password: String) throws(APIError) {
        if password.utf8.contains(0) {
            throw InputText.refusal(field: "password", "\u{0}")
        }
        if password.utf8.count > maxPasswordBytes {
            throw APIError.validation("password must be at most \(maxPasswordBytes) bytes (bcrypt ignores the rest)")
        }
    }
}
