import FrameCore

/// A failed object-store request, with the code the rest of FrameFlow reports it under.
///
/// `unavailable` (no answer, a timeout, a 5xx or a 503 "SlowDown") is worth retrying later and
/// maps to `OBJECT_STORE_UNAVAILABLE`; `rejected` (a 4xx other than 404 on a read) keeps S3's own
/// error code (`AccessDenied`, `NoSuchBucket`, `SignatureDoesNotMatch`, ...) and maps to
/// `OBJECT_STORE_REJECTED`. `notFound` is a missing key or upload (404), which callers usually
/// treat as an answer rather than a failure.
public enum S3Error: Error, Sendable, Equatable, CustomStringConvertible, CodedError {
    case unavailable(String)
    case rejected(status: Int, code: String, message: String)
    case notFound(code: String, key: String)
    case invalidResponse(String)

    public var errorCode: ErrorCode {
        switch self {
        case .unavailable: .objectStoreUnavailable
        case .rejected, .invalidResponse: .objectStoreRejected
        case .notFound: .notFound
        }
    }

    public var code: ErrorCode { errorCode }
    public var message: String { description }

    public var description: String {
        switch self {
        case .unavailable(let why): "object store unavailable: \(why)"
        case .rejected(let status, let code, let message): "object store refused the request: HTTP \(status) \(code)\(message.isEmpty ? "" : ": " + message)"
        case .notFound(let code, let key): "object store: \(code) (\(key))"
        case .invalidResponse(let why): "object store sent an answer FrameFlow cannot read: \(why)"
        }
    }

    /// Maps an error answer (status and the XML `<Error>` body) to a case.
    static func from(status: Int, body: String, key: String) -> S3Error {
        let code = S3XML.firstValue(of: "Code", in: body) ?? "HTTP\(status)"
        let message = S3XML.firstValue(of: "Message", in: body) ?? ""
        if status == 404 { return .notFound(code: code, key: key) }
        if status >= 500 || code == "SlowDown" || code == "ServiceUnavailable" {
            return .unavailable("HTTP \(status) \(code)\(message.isEmpty ? "" : ": " + message)")
        }
        return .rejected(status: status, code: code, message: message)
    }
}
