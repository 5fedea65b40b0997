import Crypto
import Foundation

/// Download links that need no token: `/downloads/<id>?expires=<unix>&signature=<hex>`
/// where the signature is HMAC-SHA256(secret, "<id>|<expires>") in lower-case hex.
///
/// The expiry is inside the signed text, so it cannot be extended; the id is
/// too, so a link cannot be moved to another job. Verification compares MACs
/// in constant time.
public struct SignedLinks: Sendable {
    let key: SymmetricKey
    public let lifetime: Duration

    public init(secret: String, lifetime: Duration = .seconds(15 * 60)) {
        // The JWT secret itself, as the shared API dialect specifies; the signed text ("<uuid>|<digits>")
        // can never be a JWT signing input ("<base64>.<base64>"), so the two uses cannot be confused.
        key = SymmetricKey(data: Array(secret.utf8))
        self.lifetime = lifetime
    }

    static func message(_ id: UUID, _ expires: Int64) -> [UInt8] {
        Array("\(id.uuidString.lowercased())|\(expires)".utf8)
    }

    public func signature(id: UUID, expires: Int64) -> String {
        HMAC<SHA256>.authenticationCode(for: Self.message(id, expires), using: key)
            .map { String(format: "%02x", $0) }.joined()
    }

    /// The path and query of a link for `id`, and when it stops working.
    public func link(for id: UUID, now: Date = Date()) -> (path: String, expiresAt: Date) {
        let expires = Int64(now.timeIntervalSince1970) + lifetime.components.seconds
        let path = "/downloads/\(id.uuidString.lowercased())?expires=\(expires)&signature=\(signature(id: id, expires: expires))"
        return (path, Date(timeIntervalSince1970: TimeInterval(expires)))
    }

    /// Whether `signature` is this service's signature of (`id`, `expires`) and `expires` has not passed.
    public func isValid(id: UUID, expires: Int64, signature: String, now: Date = Date()) -> Bool {
        guard expires >= Int64(now.timeIntervalSince1970), let mac = Self.bytes(hex: signature) else { return false }
        return HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: Self.message(id, expires), using: key)
    }

    static func bytes(hex: String) -> [UInt8]? {
        let chars = Array(hex.utf8)
        guard chars.count == 64 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(32)
        var i = 0
        while i < chars.count {
            guard let hi = nibble(chars[i]), let lo = nibble(chars[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
