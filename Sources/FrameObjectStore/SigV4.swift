import Crypto
import Foundation

/// An access key pair for an S3-compatible store.
///
/// The secret never appears in `description`/`debugDescription`, so a credential that
/// ends up in a log line or an error message shows only the access key id.
public struct S3Credentials: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    public var accessKeyID: String
    public var secretAccessKey: String
    /// A temporary (STS) session token, signed as `x-amz-security-token` when present.
    public var sessionToken: String?

    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
    }

    public var description: String { "S3Credentials(\(accessKeyID), secret redacted)" }
    public var debugDescription: String { description }
}

/// What AWS Signature Version 4 signs of an HTTP request.
///
/// `path` and the query items are the decoded (raw) strings; the signer percent-encodes
/// them the way S3 expects (each byte outside the unreserved set, `/` kept in the path),
/// and the HTTP client sends exactly the encoding the signer produced (``SigV4/encodedTarget``),
/// so what is signed and what is sent cannot drift apart.
public struct SigV4Request: Sendable, Equatable {
    public var method: String
    public var path: String
    public var query: [(name: String, value: String)]
    public var headers: [(name: String, value: String)]

    public init(method: String, path: String, query: [(name: String, value: String)] = [], headers: [(name: String, value: String)] = []) {
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
    }

    public static func == (a: SigV4Request, b: SigV4Request) -> Bool {
        a.method == b.method && a.path == b.path
            && a.query.map { [$0.name, $0.value] } == b.query.map { [$0.name, $0.value] }
            && a.headers.map { [$0.name, $0.value] } == b.headers.map { [$0.name, $0.value] }
    }
}

/// The intermediate and final products of signing one request: kept together so the tests can
/// compare each step with AWS's published vectors and a failure says which step differs.
public struct SigV4Signature: Sendable, Equatable {
    public var canonicalRequest: String
    public var stringToSign: String
    public var signature: String
    public var signedHeaders: String
    public var credentialScope: String
    /// The `Authorization` header value (header-based signing); empty for a presigned URL.
    public var authorization: String
    /// The query a presigned URL carries, in canonical order and encoding, signature last; empty
    /// for header-based signing.
    public var presignedQuery: String
}

/// AWS Signature Version 4 (`AWS4-HMAC-SHA256`), header-based and presigned (query) forms.
///
/// Written from AWS's specification ("Authenticating Requests (AWS Signature Version 4)" and
/// "Using Query Parameters"); checked against AWS's sig-v4 test suite and the S3 documentation's
/// worked examples (Tests/FrameObjectStoreTests/Fixtures). Pure functions of their inputs: the
/// clock is a parameter.
public struct SigV4: Sendable, Equatable {
    public static let algorithm = "AWS4-HMAC-SHA256"
    /// The payload hash of a presigned URL and of a body that is not hashed.
    public static let unsignedPayload = "UNSIGNED-PAYLOAD"
    /// SHA-256 of the empty string.
    public static let emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    public var region: String
    public var service: String

    public init(region: String, service: String = "s3") {
        self.region = region
        self.service = service
    }

    // MARK: Header-based signing

    /// Signs `request` (whose headers must already contain `host` and, for S3,
    /// `x-amz-content-sha256`), adding `x-amz-date` (and the session token) to what is signed.
    /// Returns the signature; the caller sends `request.headers` + `x-amz-date` + `Authorization`.
    public func sign(_ request: SigV4Request, payloadHash: String, credentials: S3Credentials, date: Date) -> SigV4Signature {
        let stamp = Self.timestamp(date)
        var headers = request.headers
        if !headers.contains(where: { $0.name.lowercased() == "x-amz-date" }) {
            headers.append((name: "x-amz-date", value: stamp.full))
        }
        if let token = credentials.sessionToken, !headers.contains(where: { $0.name.lowercased() == "x-amz-security-token" }) {
            headers.append((name: "x-amz-security-token", value: token))
        }
        let (canonicalHeaders, signedHeaders) = Self.canonicalHeaders(headers)
        let canonical = [
            request.method,
            Self.canonicalURI(request.path),
            Self.canonicalQuery(request.query),
            canonicalHeaders,
            signedHeaders,
            payloadHash,
        ].joined(separator: "\n")
        let scope = "\(stamp.day)/\(region)/\(service)/aws4_request"
        let toSign = Self.stringToSign(timestamp: stamp.full, scope: scope, canonicalRequest: canonical)
        let signature = Self.hex(HMAC<SHA256>.authenticationCode(for: Data(toSign.utf8), using: signingKey(credentials.secretAccessKey, day: stamp.day)))
        let authorization = "\(Self.algorithm) Credential=\(credentials.accessKeyID)/\(scope), SignedHeaders=\(signedHeaders), Signature=\(signature)"
        return SigV4Signature(
            canonicalRequest: canonical, stringToSign: toSign, signature: signature, signedHeaders: signedHeaders,
            credentialScope: scope, authorization: authorization, presignedQuery: "")
    }

    // MARK: Presigned URLs (query authentication)

    /// Presigns `request` for `expires` seconds from `date` (1 s ... 7 days, S3's limits): the
    /// `X-Amz-*` parameters are added to the request's own query, the payload is `UNSIGNED-PAYLOAD`,
    /// and `request.headers` (at least `host`) are signed. The result's `presignedQuery` is the
    /// whole query string to put after `?`.
    public func presign(_ request: SigV4Request, expires: Int, credentials: S3Credentials, date: Date) -> SigV4Signature {
        let stamp = Self.timestamp(date)
        let scope = "\(stamp.day)/\(region)/\(service)/aws4_request"
        let (canonicalHeaders, signedHeaders) = Self.canonicalHeaders(request.headers)
        var query = request.query
        query.append((name: "X-Amz-Algorithm", value: Self.algorithm))
        query.append((name: "X-Amz-Credential", value: "\(credentials.accessKeyID)/\(scope)"))
        query.append((name: "X-Amz-Date", value: stamp.full))
        query.append((name: "X-Amz-Expires", value: String(min(max(expires, 1), 604_800))))
        if let token = credentials.sessionToken { query.append((name: "X-Amz-Security-Token", value: token)) }
        query.append((name: "X-Amz-SignedHeaders", value: signedHeaders))
        let canonicalQuery = Self.canonicalQuery(query)
        let canonical = [
            request.method,
            Self.canonicalURI(request.path),
            canonicalQuery,
            canonicalHeaders,
            signedHeaders,
            Self.unsignedPayload,
        ].joined(separator: "\n")
        let toSign = Self.stringToSign(timestamp: stamp.full, scope: scope, canonicalRequest: canonical)
        let signature = Self.hex(HMAC<SHA256>.authenticationCode(for: Data(toSign.utf8), using: signingKey(credentials.secretAccessKey, day: stamp.day)))
        return SigV4Signature(
            canonicalRequest: canonical, stringToSign: toSign, signature: signature, signedHeaders: signedHeaders,
            credentialScope: scope, authorization: "", presignedQuery: canonicalQuery + "&X-Amz-Signature=" + signature)
    }

    // MARK: Building blocks (public for the tests and the HTTP client)

    /// kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, day), region), service), "aws4_request").
    func signingKey(_ secret: String, day: String) -> SymmetricKey {
        var key = SymmetricKey(data: Data(("AWS4" + secret).utf8))
        for part in [day, region, service, "aws4_request"] {
            key = SymmetricKey(data: Data(HMAC<SHA256>.authenticationCode(for: Data(part.utf8), using: key)))
        }
        return key
    }

    static func stringToSign(timestamp: String, scope: String, canonicalRequest: String) -> String {
        [algorithm, timestamp, scope, sha256Hex(Data(canonicalRequest.utf8))].joined(separator: "\n")
    }

    /// `YYYYMMDD'T'HHMMSS'Z'` and `YYYYMMDD` in UTC.
    public static func timestamp(_ date: Date) -> (full: String, day: String) {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        func pad(_ v: Int?, _ width: Int) -> String {
            let s = String(v ?? 0)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        let day = pad(c.year, 4) + pad(c.month, 2) + pad(c.day, 2)
        return (day + "T" + pad(c.hour, 2) + pad(c.minute, 2) + pad(c.second, 2) + "Z", day)
    }

    /// Lower-cased names, sorted; values trimmed with inner runs of spaces collapsed; a name given
    /// more than once gets its values joined with `,` in the order given.
    static func canonicalHeaders(_ headers: [(name: String, value: String)]) -> (block: String, signed: String) {
        var merged: [String: [String]] = [:]
        for (name, value) in headers {
            merged[name.lowercased(), default: []].append(normalizeValue(value))
        }
        let names = merged.keys.sorted()
        let block = names.map { "\($0):\(merged[$0]!.joined(separator: ","))\n" }.joined()
        return (block, names.joined(separator: ";"))
    }

    private static func normalizeValue(_ value: String) -> String {
        var out = ""
        var lastWasSpace = false
        for ch in value.trimmingCharacters(in: .whitespaces) {
            if ch == " " || ch == "\t" {
                if !lastWasSpace { out.append(" ") }
                lastWasSpace = true
            } else {
                out.append(ch)
                lastWasSpace = false
            }
        }
        return out
    }

    /// The path, each byte outside the unreserved set percent-encoded once, `/` kept (S3 does not
    /// normalize paths or encode twice, unlike other AWS services). Empty is `/`.
    public static func canonicalURI(_ path: String) -> String {
        let encoded = uriEncode(path, keepSlash: true)
        return encoded.hasPrefix("/") ? encoded : "/" + encoded
    }

    /// Names and values encoded (with `/` encoded), sorted by name then value, `name=value` joined with `&`.
    public static func canonicalQuery(_ query: [(name: String, value: String)]) -> String {
        query.map { (uriEncode($0.name, keepSlash: false), uriEncode($0.value, keepSlash: false)) }
            .sorted { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
            .map { "\($0.0)=\($0.1)" }
            .joined(separator: "&")
    }

    /// RFC 3986 percent-encoding of the UTF-8 bytes: `A-Z a-z 0-9 - . _ ~` stay, every other byte
    /// becomes `%XX` (upper-case hex); `/` stays only when `keepSlash`.
    public static func uriEncode(_ s: String, keepSlash: Bool) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for byte in s.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            case UInt8(ascii: "/") where keepSlash:
                out.append("/")
            default:
                out.append("%")
                out.append(hexDigits[Int(byte >> 4)])
                out.append(hexDigits[Int(byte & 0x0F)])
            }
        }
        return out
    }

    /// The request target to send: the canonical URI plus the canonical query, so the bytes on the
    /// wire are the bytes that were signed.
    public static func encodedTarget(path: String, query: [(name: String, value: String)]) -> String {
        let q = canonicalQuery(query)
        return canonicalURI(path) + (q.isEmpty ? "" : "?" + q)
    }

    public static func sha256Hex<D: DataProtocol>(_ data: D) -> String { hex(SHA256.hash(data: data)) }

    static func hex<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
        var s = ""
        for b in bytes {
            s.append(hexLower[Int(b >> 4)])
            s.append(hexLower[Int(b & 0x0F)])
        }
        return s
    }

    private static let hexDigits: [Character] = Array("0123456789ABCDEF")
    private static let hexLower: [Character] = Array("0123456789abcdef")
}
