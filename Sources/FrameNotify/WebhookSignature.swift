import Crypto
import Foundation

/// The webhook's authenticity proof: `X-FrameFlow-Signature: sha256=<hex>`,
/// an HMAC-SHA256 with the shared secret over `<timestamp>.<raw body>`, where
/// `<timestamp>` is the `X-FrameFlow-Timestamp` header (Unix seconds).
///
/// The timestamp is inside the signed bytes so that a receiver which rejects
/// old timestamps (say, older than 5 minutes) also rejects replays: an
/// attacker cannot move a captured body to a fresh timestamp.
public enum WebhookSignature {
    public static let signatureHeader = "X-FrameFlow-Signature"
    public static let timestampHeader = "X-FrameFlow-Timestamp"

    /// `sha256=<lower-case hex>` for `body` sent at `timestamp`.
    public static func sign(body: [UInt8], timestamp: Int64, secret: String) -> String {
        var mac = HMAC<SHA256>(key: SymmetricKey(data: Array(secret.utf8)))
        mac.update(data: Array("\(timestamp).".utf8))
        mac.update(data: body)
        return "sha256=" + mac.finalize().map { String(format: "%02x", $0) }.joined()
    }

    /// Checks a received signature in constant time, and that `timestamp` is within `tolerance` of `now`.
    public static func verify(
        body: [UInt8], timestamp: Int64, signature: String, secret: String, now: Date = Date(), tolerance: TimeInterval = 300
    ) -> Bool {
        guard abs(now.timeIntervalSince1970 - Double(timestamp)) <= tolerance else { return false }
        let expected = Array(sign(body: body, timestamp: timestamp, secret: secret).utf8)
        let given = Array(signature.utf8)
        guard expected.count == given.count else { return false }
        return zip(expected, given).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }
}
