import Crypto
import FrameCore
import Foundation
import HTTPTypes

/// The vocabulary of tus 1.0.0 (https://tus.io/protocols/resumable-upload): header names, the
/// extensions this server implements, and parsers for the headers whose syntax is tus's own.
enum Tus {
    static let version = "1.0.0"
    static let extensions = ["creation", "creation-with-upload", "termination", "expiration", "checksum"]
    static let checksumAlgorithms = ["sha1"]
    /// The only body type PATCH (and creation-with-upload) accept.
    static let chunkContentType = "application/offset+octet-stream"

    /// Decodes `Upload-Metadata`: comma-separated `key base64value` pairs (the value may be absent).
    /// Keys must be unique and non-empty; values must be valid Base64 of UTF-8 text.
    static func metadata(_ header: String?) throws(APIError) -> [String: String] {
        guard let header, !header.trimmingCharacters(in: .whitespaces).isEmpty else { return [:] }
        var result: [String: String] = [:]
        for pair in header.split(separator: ",", omittingEmptySubsequences: false) {
            let parts = pair.trimmingCharacters(in: .whitespaces).split(separator: " ", omittingEmptySubsequences: true)
            guard let key = parts.first, parts.count <= 2 else {
                throw APIError(.badRequest, .validationFailed, "Upload-Metadata must be 'key base64value' pairs separated by commas")
            }
            var value = ""
            if parts.count == 2 {
                guard let data = Data(base64Encoded: String(parts[1])), let text = String(data: data, encoding: .utf8) else {
                    throw APIError(.badRequest, .validationFailed, "Upload-Metadata value of '\(key)' is not Base64 of UTF-8 text")
                }
                value = text
            }
            guard result.updateValue(value, forKey: String(key)) == nil else {
                throw APIError(.badRequest, .validationFailed, "Upload-Metadata names '\(key)' twice")
            }
        }
        return result
    }

    /// A parsed `Upload-Checksum: <algorithm> <base64 digest>`.
    struct Checksum: Sendable {
        var algorithm: String
        var digest: [UInt8]

        /// Whether `computed` (the digest of the chunk as received) is this checksum.
        func matches(_ computed: [UInt8]) -> Bool { computed == digest }
    }

    static func checksum(_ header: String?) throws(APIError) -> Checksum? {
        guard let header else { return nil }
        let parts = header.trimmingCharacters(in: .whitespaces).split(separator: " ", omittingEmptySubsequences: true)
        guard parts.count == 2, let digest = Data(base64Encoded: String(parts[1])) else {
            throw APIError(.badRequest, .validationFailed, "Upload-Checksum must be '<algorithm> <base64 digest>'")
        }
        let algorithm = parts[0].lowercased()
        guard checksumAlgorithms.contains(algorithm) else {
            throw APIError(.badRequest, .validationFailed,
                           "Upload-Checksum algorithm '\(algorithm)' is not supported; supported: \(checksumAlgorithms.joined(separator: ","))")
        }
        guard digest.count == Insecure.SHA1.Digest.byteCount else {
            throw APIError(.badRequest, .validationFailed, "Upload-Checksum: a sha1 digest has \(Insecure.SHA1.Digest.byteCount) bytes")
        }
        return Checksum(algorithm: algorithm, digest: Array(digest))
    }

    /// A non-negative integer header (`Upload-Length`, `Upload-Offset`).
    static func nonNegative(_ value: String?, _ name: String) throws(APIError) -> Int64? {
        guard let value else { return nil }
        guard let n = Int64(value.trimmingCharacters(in: .whitespaces)), n >= 0 else {
            throw APIError(.badRequest, .validationFailed, "\(name) must be a non-negative integer, got '\(value)'")
        }
        return n
    }

    /// RFC 9110 IMF-fixdate, the format of `Upload-Expires`.
    static func httpDate(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        return formatter.string(from: date)
    }
}

extension HTTPField.Name {
    static let tusResumable = Self("Tus-Resumable")!
    static let tusVersion = Self("Tus-Version")!
    static let tusExtension = Self("Tus-Extension")!
    static let tusMaxSize = Self("Tus-Max-Size")!
    static let tusChecksumAlgorithm = Self("Tus-Checksum-Algorithm")!
    static let uploadOffset = Self("Upload-Offset")!
    static let uploadLength = Self("Upload-Length")!
    static let uploadDeferLength = Self("Upload-Defer-Length")!
    static let uploadMetadata = Self("Upload-Metadata")!
    static let uploadExpires = Self("Upload-Expires")!
    static let uploadChecksum = Self("Upload-Checksum")!
    /// The id of the video (job) a finished upload became.
    static let frameflowVideoID = Self("FrameFlow-Video-Id")!
    /// The error code of a refused upload, on HEAD (which has no body for the problem document).
    static let frameflowErrorCode = Self("FrameFlow-Error-Code")!
}
