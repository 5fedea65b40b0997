import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Yams

/// The HTTP API's OpenAPI 3.1 contract (`openapi.yaml` at the repository root, which is this
/// module's `Contract/openapi.yaml`), served at `/openapi.yaml` and, converted once at start,
/// at `/openapi.json`.
///
/// The coordinator's tests compare ``operations`` with the routes its router registers, so a
/// route cannot be added (or removed) without the contract saying so. The JSON form keeps the
/// YAML's key order and resolves its anchors, so both documents describe exactly the same thing.
public struct APIContract: Sendable {
    public struct Document: Sendable {
        public var bytes: ByteBuffer
        public var contentType: String
        public var etag: String
    }

    public let yaml: Document
    public let json: Document
    /// Every `(path, method)` the contract describes, methods upper-case, paths as written
    /// (`/videos/{id}`).
    public let operations: Set<Operation>

    public struct Operation: Hashable, Sendable, CustomStringConvertible {
        public var method: String
        public var path: String
        public init(method: String, path: String) {
            self.method = method
            self.path = path
        }
        public var description: String { "\(method) \(path)" }
    }

    /// Why a contract cannot be used.
    public struct Invalid: Error, CustomStringConvertible {
        public var description: String
    }

    static let methods = ["get", "put", "post", "delete", "options", "head", "patch", "trace"]

    /// The bundled contract; nil when the resource bundle is missing (the routes are then not added).
    public static func bundled() throws -> APIContract? {
        guard let url = Bundle.module.url(forResource: "openapi", withExtension: "yaml", subdirectory: "Contract") else {
            return nil
        }
        return try APIContract(yaml: String(decoding: try Data(contentsOf: url), as: UTF8.self))
    }

    /// Parses `yaml` and converts it to JSON; throws ``Invalid`` (or Yams' error) for a document
    /// that is not a mapping with `openapi` and `paths`.
    public init(yaml text: String) throws {
        guard let root = try Yams.compose(yaml: text), case .mapping(let top) = root else {
            throw Invalid(description: "the contract is not a YAML mapping")
        }
        guard top["openapi"]?.string?.hasPrefix("3.1") == true, case .mapping(let paths)? = top["paths"] else {
            throw Invalid(description: "the contract needs `openapi: 3.1.x` and `paths`")
        }
        var operations = Set<Operation>()
        for (path, item) in paths {
            guard let path = path.string, case .mapping(let item) = item else { continue }
            for (key, _) in item {
                if let method = key.string, Self.methods.contains(method) {
                    operations.insert(Operation(method: method.uppercased(), path: path))
                }
            }
        }
        self.operations = operations
        var json = ""
        try Self.writeJSON(root, to: &json)
        json += "\n"
        yaml = Self.document(Array(text.utf8), type: "application/yaml")
        self.json = Self.document(Array(json.utf8), type: "application/json")
    }

    static func document(_ bytes: [UInt8], type: String) -> Document {
        let digest = SHA256.hash(data: bytes).prefix(12).map { String(format: "%02x", $0) }.joined()
        return Document(bytes: ByteBuffer(bytes: bytes), contentType: type, etag: "\"\(digest)\"")
    }

    /// JSON for a YAML node: scalars typed by the tag YAML's core schema resolves them to (so
    /// `'200'` stays a string and `200` is a number), mappings in document order.
    static func writeJSON(_ node: Node, to out: inout String) throws {
        switch node {
        case .scalar(let scalar):
            switch Tag.Name(rawValue: node.tag.description) {
            case .null: out += "null"
            case .bool: out += node.bool == true ? "true" : "false"
            case .int:
                guard let value = node.int else { throw Invalid(description: "not an integer: \(scalar.string)") }
                out += String(value)
            case .float:
                guard let value = node.float, value.isFinite else { throw Invalid(description: "not a JSON number: \(scalar.string)") }
                out += "\(value)"
            default: out += quoted(scalar.string)
            }
        case .mapping(let mapping):
            out += "{"
            for (index, pair) in mapping.enumerated() {
                guard let key = pair.key.string else { throw Invalid(description: "a mapping key is not a scalar") }
                if index > 0 { out += "," }
                out += quoted(key) + ":"
                try writeJSON(pair.value, to: &out)
            }
            out += "}"
        case .sequence(let sequence):
            out += "["
            for (index, element) in sequence.enumerated() {
                if index > 0 { out += "," }
                try writeJSON(element, to: &out)
            }
            out += "]"
        }
    }

    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    /// `GET /openapi.yaml` and `GET /openapi.json`, with ETags (a revalidation is a 304).
    public func addRoutes<Context: RequestContext>(to router: Router<Context>) {
        for (path, document) in [("openapi.yaml", yaml), ("openapi.json", json)] {
            router.get(RouterPath(path)) { request, _ -> Response in
                var headers = HTTPFields()
                headers[.eTag] = document.etag
                headers[.cacheControl] = "no-cache"
                if request.headers[.ifNoneMatch] == document.etag { return Response(status: .notModified, headers: headers) }
                headers[.contentType] = document.contentType
                return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: document.bytes))
            }
        }
    }
}
