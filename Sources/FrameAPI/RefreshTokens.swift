import Crypto
import FrameStore
import Foundation

/// Refresh tokens as the API hands them out: 32 random bytes (Base64url), stored as their
/// SHA-256 only, so a copy of the database cannot be replayed. Every use rotates the token
/// (the old one dies, the answer carries the next); reusing a rotated token revokes its whole
/// family (see ``RefreshTokenStore``).
struct RefreshTokens: Sendable {
    let store: RefreshTokenStore
    let lifetime: Duration

    var lifetimeSeconds: Int { Int(lifetime.components.seconds) }

    static func generate() -> String {
        let key = SymmetricKey(size: .bits256)
        let data = key.withUnsafeBytes { Data($0) }
        return data.base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    static func hash(_ token: String) -> String {
        SHA256.hash(data: Data(token.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// A new token for a fresh login.
    func issue(userID: UUID) async throws -> String {
        let token = Self.generate()
        try await store.issue(userID: userID, hash: Self.hash(token), expiresAt: Date().addingTimeInterval(lifetime.seconds))
        return token
    }

    /// The user of a valid `token` and its successor; nil when it is unknown, expired or revoked.
    func rotate(_ token: String) async throws -> (userID: UUID, next: String)? {
        let next = Self.generate()
        switch try await store.rotate(hash: Self.hash(token), newHash: Self.hash(next),
                                      expiresAt: Date().addingTimeInterval(lifetime.seconds)) {
        case .rotated(let userID): return (userID, next)
        case .refused: return nil
        }
    }

    /// Logout: the token's family can no longer be used.
    func revoke(_ token: String) async throws {
        try await store.revokeFamily(hash: Self.hash(token))
    }
}
