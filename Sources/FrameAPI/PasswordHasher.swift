import HummingbirdBcrypt
import NIOPosix

/// bcrypt hashing and verification, run on NIO's blocking thread pool.
///
/// One bcrypt at cost 10 takes tens of milliseconds of pure CPU; run inline it
/// would stall an event loop (or a cooperative-pool thread) for every login.
public struct PasswordHasher: Sendable {
    public let cost: UInt8
    let threadPool: NIOThreadPool
    /// A valid hash (at the same cost) of a random password, verified against when the e-mail is
    /// unknown so that "no such user" and "wrong password" take the same time.
    let decoyHash: String

    public init(cost: UInt8 = 10, threadPool: NIOThreadPool = .singleton) {
        self.cost = cost
        self.threadPool = threadPool
        decoyHash = Bcrypt.hash("decoy-\(UInt64.random(in: .min ... .max))", cost: cost)
    }

    public func hash(_ password: String) async throws -> String {
        let cost = self.cost
        return try await threadPool.runIfActive { Bcrypt.hash(password, cost: cost) }
    }

    public func verify(_ password: String, hash: String) async throws -> Bool {
        try await threadPool.runIfActive { Bcrypt.verify(password, hash: hash) }
    }
}
