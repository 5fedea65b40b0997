import Crypto
import Foundation
import JWTKit

/// Issues and checks the API's access tokens: HS256 JWTs whose subject is the
/// user id, valid for ``APIConfiguration/tokenLifetime``.
///
/// Tokens carry no role: the role is read from the database on every request
/// (see ``AuthenticatedUser``), so there is nothing in them to go stale.
public struct TokenService: Sendable {
    struct Claims: JWTPayload {
        var sub: SubjectClaim
        var exp: ExpirationClaim
        var iat: IssuedAtClaim

        func verify(using algorithm: some JWTAlgorithm) async throws {
            try exp.verifyNotExpired()
        }
    }

    let keys: JWTKeyCollection
    public let lifetime: Duration

    public init(secret: String, lifetime: Duration = .seconds(3600)) async {
        keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(key: Self.signingKey(secret)), digestAlgorithm: .sha256)
        self.lifetime = lifetime
    }

    /// The secret itself when it has at least 256 bits (RFC 7518 asks HS256 keys to be as long as the
    /// hash, and JWTKit asserts it); a shorter secret is stretched with SHA-256 rather than refused,
    /// so a short `jwt_secret` in a development config still works.
    static func signingKey(_ secret: String) -> SymmetricKey {
        let bytes = Array(secret.utf8)
        return bytes.count >= 32 ? SymmetricKey(data: bytes) : SymmetricKey(data: SHA256.hash(data: bytes))
    }

    public var lifetimeSeconds: Int { Int(lifetime.components.seconds) }

    /// A signed token for `userID`, expiring `lifetime` from `now`.
    public func issue(userID: UUID, now: Date = Date()) async throws -> String {
        let claims = Claims(
            sub: SubjectClaim(value: userID.uuidString.lowercased()),
            exp: ExpirationClaim(value: now.addingTimeInterval(TimeInterval(lifetimeSeconds))),
            iat: IssuedAtClaim(value: now))
        return try await keys.sign(claims)
    }

    /// The user id a valid, unexpired token was issued for; nil for anything else.
    public func verify(_ token: String) async -> UUID? {
        guard let claims = try? await keys.verify(token, as: Claims.self) else { return nil }
        return UUID(uuidString: claims.sub.value)
    }
}
