import FrameCore
import Foundation

/// A failed API call as the CLI reports it: the HTTP status (nil when no answer came), the
/// problem document's code, its detail, and `Retry-After` when the server sent one.
///
/// ``exitStatus`` is the `frameflow` exit code for it (README, "Exit codes").
public struct APIFailure: Error, Sendable, CustomStringConvertible {
    public var httpStatus: Int?
    public var code: ErrorCode
    public var message: String
    public var retryAfter: Int?

    public init(httpStatus: Int?, code: ErrorCode, message: String, retryAfter: Int? = nil) {
        self.httpStatus = httpStatus
        self.code = code
        self.message = message
        self.retryAfter = retryAfter
    }

    public var description: String { "\(code.name): \(message)" }

    /// The documented exit codes of `frameflow`'s client commands.
    public enum Exit {
        public static let success: Int32 = 0
        /// Network failure, server error (5xx) or an unexpected answer.
        public static let failure: Int32 = 1
        /// Not logged in, or the server refused the credentials (401/403).
        public static let unauthorized: Int32 = 2
        /// No such video or upload (404).
        public static let notFound: Int32 = 3
        /// The server refused the request or the file (400, 409, 410, 413, 415, 422, 460).
        public static let refused: Int32 = 4
        /// A waited-for job ended FAILED or CANCELLED.
        public static let jobFailed: Int32 = 5
        /// Rate limited or over a quota (429).
        public static let rateLimited: Int32 = 6
    }

    public var exitStatus: Int32 {
        switch httpStatus {
        case 401, 403: Exit.unauthorized
        case 404: Exit.notFound
        case 429: Exit.rateLimited
        case let s? where (400..<500).contains(s) || s == 460: Exit.refused
        default: code == .unauthorized ? Exit.unauthorized : Exit.failure
        }
    }

    /// Turns a problem+json body into a failure with its code.
    static func from(status: Int, body: Data, retryAfter: String?) -> APIFailure {
        struct Problem: Decodable { var code: String?; var detail: String? }
        let problem = try? JSONDecoder().decode(Problem.self, from: body)
        let code = problem?.code.flatMap(ErrorCode.init(name:)) ?? (status == 401 ? .unauthorized : .internalError)
        let text = problem?.detail ?? (body.isEmpty ? "no details" : String(decoding: body.prefix(500), as: UTF8.self))
        return APIFailure(httpStatus: status, code: code, message: "HTTP \(status): \(text)", retryAfter: retryAfter.flatMap(Int.init))
    }

    /// `error` itself when it is an ``APIFailure``, else an internal failure naming it.
    public static func wrapping(_ error: any Error) -> APIFailure {
        (error as? APIFailure) ?? APIFailure(httpStatus: nil, code: .internalError, message: "\(error)")
    }

    static func unreachable(_ base: URL, _ error: any Error) -> APIFailure {
        APIFailure(httpStatus: nil, code: .internalError,
                   message: "cannot reach the coordinator at \(base.absoluteString): \(error.localizedDescription)")
    }
}
