import FrameCore
import FrameStore
import Foundation
import Hummingbird

/// An HTTP error answered as `application/problem+json` (RFC 9457) with the
/// stable FrameFlow error ``ErrorCode`` name in `code`, so clients branch on
/// the code, never on the message text.
public struct APIError: HTTPResponseError, Sendable, CustomStringConvertible {
    public var status: HTTPResponse.Status
    public var code: ErrorCode
    public var detail: String
    /// Extra response fields the answer needs (`Retry-After` on 429/503, `Allow` on 405).
    public var headers: HTTPFields
    /// The underlying error, for the server's log only (never in the response).
    public var cause: String?

    public init(_ status: HTTPResponse.Status, _ code: ErrorCode, _ detail: String, headers: HTTPFields = [:], cause: String? = nil) {
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers
        self.cause = cause
    }

    /// The same error with `Retry-After: <seconds>` (rounded up, at least 1).
    public func retryAfter(_ delay: Duration) -> APIError {
        var copy = self
        let (seconds, attos) = delay.components
        copy.headers[.retryAfter] = String(max(1, seconds + (attos > 0 ? 1 : 0)))
        return copy
    }

    /// What a client is told for an internal failure: the cause (paths, SQL, errno) is for the
    /// server's log, never for the response.
    static let internalDetail = "an internal error occurred; it has been logged on the server"

    struct Problem: Encodable {
        var type = "about:blank"
        var title: String
        var status: Int
        var code: String
        var detail: String
    }

    public var description: String { "\(status.code) \(code.name): \(detail)" }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let shown = status.code == 500 ? Self.internalDetail : detail
        let problem = Problem(title: status.reasonPhrase, status: status.code, code: code.name, detail: shown)
        let data = try JSONEncoder().encode(problem)
        var headers = self.headers
        headers[.contentType] = "application/problem+json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    public static func unauthorized(_ detail: String = "missing or invalid credentials") -> APIError {
        APIError(.unauthorized, .unauthorized, detail)
    }
    public static func forbidden(_ detail: String) -> APIError { APIError(.forbidden, .forbidden, detail) }
    public static func notFound(_ detail: String) -> APIError { APIError(.notFound, .notFound, detail) }
    public static func validation(_ detail: String) -> APIError {
        APIError(.unprocessableContent, .validationFailed, detail)
    }

    /// Maps any error from the store, an ingestor or a canceller to the answer
    /// its code deserves; errors that are already ``APIError`` pass unchanged.
    ///
    /// The status follows the code, so every seam only has to throw a coded
    /// error (``FrameFlowError`` or ``StoreError``) to be answered correctly.
    public static func from(_ error: any Error) -> APIError {
        if let api = error as? APIError { return api }
        if let http = error as? HTTPError { return from(http) }
        let coded = error.asFrameFlowError
        let status = Self.status(for: coded.code)
        let api = APIError(status, coded.code, publicDetail(of: error, coded), cause: "\(error)")
        // Nothing was acknowledged: the client is told when trying again makes sense.
        switch coded.code {
        case .objectStoreUnavailable: return api.retryAfter(objectStoreRetryAfter)
        case .databaseUnavailable: return api.retryAfter(databaseRetryAfter)
        default: return api
        }
    }

    /// What a client may read of a seam's error. The store's own texts carry SQL, constraint names
    /// and server addresses, so they are replaced (the cause is logged); the store's not-found and
    /// state messages are written for users and pass, as do the seams' ``FrameFlowError`` messages.
    static func publicDetail(of error: any Error, _ coded: FrameFlowError) -> String {
        // The store's address and answer are for the log (the cause), not for the client.
        if coded.code == .objectStoreUnavailable { return "the object store is unavailable; nothing was stored, try again shortly" }
        guard let store = error as? StoreError else { return coded.message }
        switch store {
        case .unavailable: return "the database is unavailable; try again shortly"
        case .uniqueViolation: return "the request conflicts with data that already exists"
        case .invalidParameter: return "a value contains a NUL character, which is not allowed"
        case .notFound(let m), .invalidState(let m): return m
        case .queryFailed, .decoding: return internalDetail
        }
    }

    /// `Retry-After` of a 503 `OBJECT_STORE_UNAVAILABLE`: long enough for a store restart to be
    /// worth the client's retry, short enough that an upload tool does not give up.
    static let objectStoreRetryAfter: Duration = .seconds(5)
    /// `Retry-After` of a 503 `DATABASE_UNAVAILABLE`: a busy pool frees up within seconds, and a
    /// restarting database is back about as soon.
    static let databaseRetryAfter: Duration = .seconds(2)

    /// The HTTP status each code is answered with.
    static func status(for code: ErrorCode) -> HTTPResponse.Status {
        switch code {
        case .notMedia, .noVideoStream, .unsupportedCodec, .corruptMedia, .zeroDuration, .absurdDimensions,
             .invalidRate, .invalidOptions, .validationFailed, .decodeFailed, .noFrames:
            .unprocessableContent
        case .uploadTooLarge, .requestTooLarge, .tooManyFiles, .storageQuotaExceeded: .contentTooLarge
        case .jobQuotaExceeded, .rateLimited: .tooManyRequests
        case .unsupportedExtension: .unsupportedMediaType
        case .storageFull: .init(code: 507, reasonPhrase: "Insufficient Storage")
        case .checksumMismatch: .init(code: 460, reasonPhrase: "Checksum Mismatch")
        case .tooManyUploads: .tooManyRequests
        case .uploadExpired: .gone
        case .invalidJobState, .conflict: .conflict
        case .notFound, .jobNotFound: .notFound
        case .unauthorized: .unauthorized
        case .forbidden: .forbidden
        case .malformedRequest: .badRequest
        case .methodNotAllowed: .methodNotAllowed
        case .requestTimeout: .requestTimeout
        case .headersTooLarge: .requestHeaderFieldsTooLarge
        case .databaseUnavailable, .shuttingDown, .serverBusy, .objectStoreUnavailable: .serviceUnavailable
        case .objectStoreRejected: .badGateway
        default: .internalServerError
        }
    }

    /// Hummingbird's own errors (a body over `collect(upTo:)`'s limit, an unknown route, ...) as
    /// problem documents with the code their status stands for, instead of its plain-text bodies.
    static func from(_ error: HTTPError) -> APIError {
        let code: ErrorCode = switch error.status.code {
        case 400: .malformedRequest
        case 401: .unauthorized
        case 403: .forbidden
        case 404: .notFound
        case 405: .methodNotAllowed
        case 413: .requestTooLarge
        case 429: .rateLimited
        case 431: .headersTooLarge
        case 503: .serverBusy
        case 500...: .internalError
        default: .validationFailed
        }
        let detail = switch code {
        case .requestTooLarge: "the request body is larger than this endpoint accepts"
        case .notFound: "no such resource"
        default: error.body ?? error.status.reasonPhrase
        }
        return APIError(error.status, code, detail, headers: error.headers)
    }
}
