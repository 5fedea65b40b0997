import FrameCore
import Foundation
import Hummingbird

/// An HTTP error answered as `application/problem+json` (RFC 9457) with the
/// stable FrameFlow error ``ErrorCode`` name in `code`, so clients branch on
/// the code, never on the message text.
public struct APIError: HTTPResponseError, Sendable {
    public var status: HTTPResponse.Status
    public var code: ErrorCode
    public var detail: String

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

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let problem = Problem(title: status.reasonPhrase, status: status.code, code: code.name, detail: detail)
        let data = try JSONEncoder().encode(problem)
        var headers = HTTPFields()
        headers[.contentType] = "application/problem+json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    public static func unauthorized(_ detail: String = "missing or invalid credentials") -> APIError {
        APIError(.unauthorized, .unauthorized, detail)
    }
    public static func forbidden(_ detail: String) -> APIError { APIError(.forbidden, .forbidden, detail) }
    public static func notFound(_ detail: String) -> APIError { APIError(.notFound, .notFound, detail) }
}
