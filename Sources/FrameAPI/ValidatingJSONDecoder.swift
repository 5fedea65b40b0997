import Foundation
import Hummingbird

/// The API's JSON request decoder (``APIRequestContext/requestDecoder``): a
/// body of at most ``maxBodyBytes``, every string in it (keys too) checked
/// against ``InputText`` before it is decoded, and failures answered as 422
/// (413 for a body over the limit) instead of a decoding error's 500.
///
/// Checking the parsed document rather than each decoded field is what makes
/// this one rule in one place: a field added to a request type later is
/// covered without anyone remembering to check it.
public struct ValidatingJSONDecoder: RequestDecoder, Sendable {
    /// Largest JSON body any endpoint takes (accounts, options): far above what they need.
    public static let maxBodyBytes = 64 * 1024

    public init() {}

    var decoder: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }

    public func decode<T: Decodable>(_ type: T.Type, from request: Request, context: some RequestContext) async throws -> T {
        let data = try await Self.collect(request)
        try Self.checkStrings(in: data)
        do {
            return try decoder.decode(T.self, from: data)
        } catch {
            throw APIError.validation("the body is not the JSON this endpoint expects (\(Self.describe(error)))")
        }
    }

    /// Decodes `data` (already collected) with the same check, for callers that hold the bytes.
    public func decode<T: Decodable>(_ type: T.Type, from data: Data) throws -> T {
        try Self.checkStrings(in: data)
        return try decoder.decode(T.self, from: data)
    }

    /// The body, at most ``maxBodyBytes`` (413 REQUEST_TOO_LARGE beyond).
    static func collect(_ request: Request) async throws -> Data {
        if let length = request.headers[.contentLength].flatMap(Int.init), length > maxBodyBytes {
            throw tooLarge
        }
        do {
            return Data(try await request.body.collect(upTo: maxBodyBytes).readableBytesView)
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw tooLarge
        }
    }

    static let tooLarge = APIError(.contentTooLarge, .requestTooLarge, "a JSON body may be at most \(maxBodyBytes) bytes")

    /// Throws 422 naming the first string (by its path, e.g. `email`) that holds a refused character.
    /// Bytes that are not JSON pass: the decoder that follows reports them.
    static func checkStrings(in data: Data) throws(APIError) {
        // Raw control bytes are never valid JSON (only tab, LF and CR as whitespace between tokens);
        // refusing them here does not depend on how lenient the parsers below are.
        if let raw = data.first(where: { $0 < 0x20 && $0 != 0x09 && $0 != 0x0A && $0 != 0x0D }) {
            throw InputText.refusal(field: "the body", Unicode.Scalar(raw))
        }
        guard let document = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]) else { return }
        try check(document, path: "")
    }

    private static func check(_ value: Any, path: String) throws(APIError) {
        switch value {
        case let text as String:
            try InputText.check(text, field: path.isEmpty ? "the body" : path)
        case let object as [String: Any]:
            for (key, member) in object {
                let memberPath = path.isEmpty ? key : "\(path).\(key)"
                try InputText.check(key, field: "a key in \(path.isEmpty ? "the body" : path)")
                try check(member, path: memberPath)
            }
        case let array as [Any]:
            for (i, element) in array.enumerated() { try check(element, path: "\(path)[\(i)]") }
        default:
            break
        }
    }

    /// A one-line reason for a decoding failure, naming the field when there is one.
    static func describe(_ error: any Error) -> String {
        guard let error = error as? DecodingError else { return "not JSON" }
        switch error {
        case .keyNotFound(let key, _): return "'\(key.stringValue)' is missing"
        case .typeMismatch(_, let c), .valueNotFound(_, let c):
            return "'\(c.codingPath.map(\.stringValue).joined(separator: "."))' has the wrong type"
        case .dataCorrupted: return "not valid JSON"
        @unknown default: return "not valid JSON"
        }
    }
}
