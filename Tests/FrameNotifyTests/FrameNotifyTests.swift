import Foundation
import Testing
@testable import FrameNotify

/// The pieces of delivery that need no peer: the signature, the message text, address checks.
@Suite struct FrameNotifyTests {
    @Test func signatureMatchesAnIndependentHMAC() {
        // Computed with Python's hmac module over "1763850000." + body.
        let body = Array(#"{"a":1}"#.utf8)
        let signature = WebhookSignature.sign(body: body, timestamp: 1_763_850_000, secret: "0123456789abcdef-secret")
        #expect(signature == "sha256=6f4c0e72c015a1686faafd495adf62a2acca7caf500b17e78f23d0c59a886fcd")
        let at = Date(timeIntervalSince1970: 1_763_850_010)
        #expect(WebhookSignature.verify(body: body, timestamp: 1_763_850_000, signature: signature,
                                        secret: "0123456789abcdef-secret", now: at))
        // Another body, another timestamp (a replay under a fresh time), another secret, or too old: refused.
        #expect(!WebhookSignature.verify(body: Array(#"{"a":2}"#.utf8), timestamp: 1_763_850_000, signature: signature,
                                         secret: "0123456789abcdef-secret", now: at))
        #expect(!WebhookSignature.verify(body: body, timestamp: 1_763_850_005, signature: signature,
                                         secret: "0123456789abcdef-secret", now: at))
        #expect(!WebhookSignature.verify(body: body, timestamp: 1_763_850_000, signature: signature,
                                         secret: "another-secret-0000", now: at))
        #expect(!WebhookSignature.verify(body: body, timestamp: 1_763_850_000, signature: signature,
                                         secret: "0123456789abcdef-secret", now: at.addingTimeInterval(3600)))
    }

    @Test func messageIsDotStuffedWithCRLF() {
        let text = SMTPClient.compose(
            from: "a@example.org", to: "b@example.org", subject: "line\r\nBcc: evil@x", body: "one\n.two\n..three",
            date: Date(timeIntervalSince1970: 0))
        #expect(text.contains("Subject: line  Bcc: evil@x\r\n"))
        #expect(!text.contains("\r\nBcc:"))
        #expect(text.hasSuffix("\r\n\r\none\r\n..two\r\n...three"))
        #expect(text.contains("Date: Thu, 01 Jan 1970 00:00:00 +0000\r\n"))
    }

    @Test func recipientsThatCouldInjectCommandsAreRefused() {
        #expect(SMTPClient.isPlainAddress("user@example.org"))
        for bad in ["user", "@x", "a@", "a@b\r\nRCPT TO:<c@d>", "a <b@c>", "a@b@c"] {
            #expect(!SMTPClient.isPlainAddress(bad), "\(bad)")
        }
    }

    @Test func notificationTextCarriesIdAndCode() throws {
        let id = UUID()
        let n = JobNotification(
            event: "job.failed", jobId: id, status: "FAILED", originalFilename: "clip.mp4", frameCount: 0,
            errorCode: "DECODE_FAILED", errorMessage: "corrupt", occurredAt: Date(timeIntervalSince1970: 0))
        #expect(n.subject.contains(id.uuidString.lowercased()))
        #expect(n.subject.contains("DECODE_FAILED"))
        #expect(n.text.contains("Error code: DECODE_FAILED"))
        let json = String(decoding: try n.jsonBody(), as: UTF8.self)
        #expect(json.contains(#""event":"job.failed""#))
        #expect(json.contains(#""occurredAt":"1970-01-01T00:00:00Z""#))
    }
}
