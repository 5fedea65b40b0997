import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL

/// Reads byte ranges of one object through a presigned GET URL, with HTTP Range requests: how a
/// node reads its source straight from the store (protocol `LEASE_URL`), holding no credentials.
///
/// The URL is used exactly as given (its query is the signature, and `Host` is the signed header),
/// over plain HTTP or TLS as its scheme says. Every answer but `206 Partial Content` starting at the
/// asked offset is an ``S3Error``: a refused signature (expired, tampered: 403) is `rejected`
/// (`OBJECT_STORE_REJECTED`), no connection, a timeout or a 5xx is `unavailable`
/// (`OBJECT_STORE_UNAVAILABLE`). ``redactedURL`` is what logs may show: the URL without its query.
public struct PresignedRangeReader: Sendable {
    /// scheme://host[:port]/path, without the signature.
    public let redactedURL: String
    let transport: HTTPTransport
    let target: String
    let hostHeader: String
    let timeout: Duration

    public init(url: String, timeout: Duration = .seconds(30)) throws(S3Error) {
        try self.init(url: url, timeout: timeout, tlsConfiguration: nil)
    }

    /// The same with a TLS client configuration of its own (tests: a private CA).
    init(url: String, timeout: Duration, tlsConfiguration: TLSConfiguration?) throws(S3Error) {
        guard let parts = URLComponents(string: url), let scheme = parts.scheme?.lowercased(),
              scheme == "http" || scheme == "https", let host = parts.host, !host.isEmpty
        else { throw .invalidResponse("not an absolute http(s) URL") }
        let https = scheme == "https"
        let port = parts.port ?? (https ? 443 : 80)
        let path = parts.percentEncodedPath.isEmpty ? "/" : parts.percentEncodedPath
        target = parts.percentEncodedQuery.map { "\(path)?\($0)" } ?? path
        // The Host a presigned URL was signed with is the URL's own authority.
        let bareHost = host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host
        let shownHost = bareHost.contains(":") ? "[\(bareHost)]" : bareHost
        hostHeader = parts.port == nil ? shownHost : "\(shownHost):\(port)"
        redactedURL = "\(scheme)://\(hostHeader)\(path)"
        do {
            transport = try HTTPTransport(host: bareHost, port: port, https: https, tlsConfiguration: tlsConfiguration)
        } catch {
            throw .unavailable("cannot set up TLS for \(redactedURL): \(error)")
        }
        self.timeout = timeout
    }

    /// The bytes `offset ..< offset + length` (fewer only at the object's end), at most `length` in memory.
    public func read(offset: Int64, length: Int) async throws -> ByteBuffer {
        precondition(offset >= 0 && length > 0)
        var request = HTTPRequestHead(version: .http1_1, method: .GET, uri: target)
        request.headers.add(name: "host", value: hostHeader)
        request.headers.add(name: "range", value: "bytes=\(offset)-\(offset + Int64(length) - 1)")
        request.headers.add(name: "connection", value: "close")
        request.headers.add(name: "user-agent", value: "FrameFlow/1")
        let head = request
        let transport = self.transport
        let shown = redactedURL
        return try await withTimeout(timeout, "GET \(shown)") {
            try await transport.execute(head: head, body: nil) { response, body in
                let status = Int(response.status.code)
                guard status == 206 else {
                    let text = String(buffer: try await body.collect(upTo: 64 << 10))
                    if status == 200 { throw S3Error.invalidResponse("asked for a range of \(shown), got the whole object (HTTP 200)") }
                    throw S3Error.from(status: status, body: text, key: shown)
                }
                // A range other than the one asked for would put wrong bytes under the decoder.
                guard let range = response.headers.first(name: "content-range"),
                      range.lowercased().hasPrefix("bytes \(offset)-")
                else { throw S3Error.invalidResponse("\(shown) answered a range other than bytes=\(offset)-") }
                return try await body.collect(upTo: length)
            }
        }
    }
}

extension S3Client {
    /// A presigned GET of `key` (``presignedGetURL(_:expires:downloadName:)``) and the instant it
    /// stops working, for a receiver that must know (LEASE_URL `expiresAtMillis`). The instant is
    /// taken before signing, so the URL never dies before it.
    public func presignedGet(_ key: String, expires seconds: Int) -> (url: URL, expiresAt: Date) {
        let signedAt = now()
        return (presignedGetURL(key, expires: seconds), signedAt.addingTimeInterval(TimeInterval(seconds)))
    }
}
