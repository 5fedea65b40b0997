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
    /// Extra response headers (e.g. `Retry-After` on a 429, `Tus-Version` on a tus 412).
    public var headers: HTTPFields = [:]

    public init(_ status: HTTPResponse.Status, _ code: ErrorCode, _ detail: String) {
        self.status = status
        self.code = code
        self.detail = detail
    }

    struct Problem: Encodable {
        var type = "about:blank"
        var title: String
        var status: Int
        var code: String
        var detail: String
    }

    public var description: String { "\(status.code) \(code.name): \(detail)" }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let problem = Problem(title: status.reasonPhrase, status: status.code, code: code.name, detail: detail)
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
        let coded = error.asFrameFlowError
        let status: HTTPResponse.Status = switch coded.code {
        case .notMedia, .noVideoStream, .unsupportedCodec, .corruptMedia, .zeroDuration, .absurdDimensions,
             .invalidRate, .invalidOptions, .validationFailed, .decodeFailed, .noFrames:
            .unprocessableContent
        case .uploadTooLarge: .contentTooLarge
        case .unsupportedExtension: .unsupportedMediaType
        case .storageFull: .init(code: 507, reasonPhrase: "Insufficient Storage")
        case .checksumMismatch: .init(code: 460, reasonPhrase: "Checksum Mismatch")
        case .tooManyUploads, .rateLimited: .tooManyRequests
        case .uploadExpired: .gone
        case .invalidJobState, .conflict: .conflict
        case .notFound, .jobNotFound: .notFound
        case .unauthorized: .unauthorized
        case .forbidden: .forbidden
        case .databaseUnavailable, .shuttingDown: .serviceUnavailable
        default: .internalServerError
        }
        return APIError(status, coded.code, coded.message)
    }
}
