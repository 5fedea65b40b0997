import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The web app's files (HTML, CSS, ES modules), shipped as this module's SwiftPM resources
/// and read into memory once, so a coordinator serves them from whatever directory it was
/// started in and never touches the disk per request.
///
/// Every answer has a strong ETag (a SHA-256 prefix of the bytes) and `Cache-Control:
/// no-cache`: file names carry no content hash, so the browser must revalidate, and a
/// revalidation is a 304 without a body. HTML gets the strict Content-Security-Policy the
/// app is written for (`default-src 'self'`: no inline script or style anywhere).
public struct WebAssets: Sendable {
    public struct Asset: Sendable {
        public var bytes: ByteBuffer
        public var contentType: String
        public var etag: String
    }

    /// By path below the site root, e.g. `index.html`, `js/app.js`.
    public let files: [String: Asset]

    public static let contentSecurityPolicy =
        "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"

    /// The bundled assets; empty (and the app unavailable) if the resource bundle is missing.
    public static func bundled() -> WebAssets {
        guard let root = Bundle.module.url(forResource: "Assets", withExtension: nil) else { return WebAssets(files: [:]) }
        return load(root)
    }

    /// Every file under `root`.
    public static func load(_ root: URL) -> WebAssets {
        var files: [String: Asset] = [:]
        let base = root.standardizedFileURL.path
        let enumerator = FileManager.default.enumerator(at: root, includingPropertiesForKeys: [.isRegularFileKey])
        while let url = enumerator?.nextObject() as? URL {
            guard (try? url.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true,
                  let data = try? Data(contentsOf: url) else { continue }
            var path = url.standardizedFileURL.path
            if path.hasPrefix(base) { path.removeFirst(base.count) }
            while path.hasPrefix("/") { path.removeFirst() }
            let digest = SHA256.hash(data: data).prefix(12).map { String(format: "%02x", $0) }.joined()
            files[path] = Asset(bytes: ByteBuffer(bytes: data), contentType: contentType(url.pathExtension), etag: "\"\(digest)\"")
        }
        return WebAssets(files: files)
    }

    public init(files: [String: Asset]) {
        self.files = files
    }

    static func contentType(_ ext: String) -> String {
        switch ext.lowercased() {
        case "html": "text/html; charset=utf-8"
        case "js", "mjs": "text/javascript; charset=utf-8"
        case "css": "text/css; charset=utf-8"
        case "svg": "image/svg+xml"
        case "png": "image/png"
        case "ico": "image/x-icon"
        case "json": "application/json"
        default: "application/octet-stream"
        }
    }

    /// The answer for `path` (nil: not an asset), honouring `If-None-Match`.
    public func response(path: String, request: Request) -> Response? {
        guard let asset = files[path] else { return nil }
        var headers = HTTPFields()
        headers[.eTag] = asset.etag
        headers[.cacheControl] = "no-cache"
        headers[HTTPField.Name("X-Content-Type-Options")!] = "nosniff"
        if asset.contentType.hasPrefix("text/html") {
            headers[.contentSecurityPolicy] = Self.contentSecurityPolicy
            headers[HTTPField.Name("Referrer-Policy")!] = "no-referrer"
        }
        if let match = request.headers[.ifNoneMatch], match.split(separator: ",").contains(where: { $0.trimmingCharacters(in: .whitespaces) == asset.etag }) {
            return Response(status: .notModified, headers: headers)
        }
        headers[.contentType] = asset.contentType
        let body = request.method == .head ? ResponseBody() : ResponseBody(byteBuffer: asset.bytes)
        headers[.contentLength] = "\(asset.bytes.readableBytes)"
        return Response(status: .ok, headers: headers, body: body)
    }

    /// `GET /` (the app) and `GET /web/...` (its files) on `router`.
    public func addRoutes<Context: RequestContext>(to router: Router<Context>) {
        router.get("/") { request, _ -> Response in
            response(path: "index.html", request: request) ?? Response(status: .notFound)
        }
        router.get("web/**") { request, _ -> Response in
            let path = String(request.uri.path.dropFirst("/web/".count))
            return response(path: path, request: request) ?? Response(status: .notFound)
        }
    }
}
