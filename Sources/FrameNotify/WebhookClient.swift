import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// Where webhooks go and the secret they are signed with.
public struct WebhookSettings: Sendable, Equatable {
    public var url: URL
    public var secret: String

    public init(url: URL, secret: String) {
        self.url = url
        self.secret = secret
    }
}

/// POSTs signed JSON to the webhook URL over HTTP/1.1 (TLS for `https`),
/// one connection per request, and reports the status code.
///
/// Only 2xx counts as delivered; anything else (or no answer within the
/// timeout) is an error the dispatcher retries. Redirects are not followed:
/// a signed body should go where the operator configured, nowhere else.
public struct WebhookClient: Sendable {
    public let settings: WebhookSettings
    public let timeout: Duration

    public init(settings: WebhookSettings, timeout: Duration = .seconds(10)) {
        self.settings = settings
        self.timeout = timeout
    }

    /// Signs and POSTs `body`; throws unless the answer is 2xx.
    public func post(body: [UInt8], now: Date = Date()) async throws {
        let timestamp = Int64(now.timeIntervalSince1970)
        let signature = WebhookSignature.sign(body: body, timestamp: timestamp, secret: settings.secret)
        let url = settings.url
        let status = try await withTimeout(timeout, "webhook POST to \(url.host ?? "?")") {
            try await Self.exchange(url: url, body: body, headers: [
                (WebhookSignature.signatureHeader, signature), (WebhookSignature.timestampHeader, "\(timestamp)"),
            ])
        }
        guard (200..<300).contains(status) else { throw NotifyError("webhook answered HTTP \(status)") }
    }

    private static func exchange(url: URL, body: [UInt8], headers extra: [(String, String)]) async throws -> Int {
        guard let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https", let host = url.host, !host.isEmpty
        else { throw NotifyError("webhook URL must be http:// or https:// with a host") }
        let https = scheme == "https"
        let port = url.port ?? (https ? 443 : 80)
        let tls: NIOSSLContext? = https ? try NIOSSLContext(configuration: .makeClientConfiguration()) : nil
        var target = url.path.isEmpty ? "/" : url.path
        if let query = url.query { target += "?" + query }
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(5))
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(
                            try NIOSSLClientHandler(context: tls, serverHostname: isIPAddress(host) ? nil : host))
                    }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(wrappingChannelSynchronously: channel)
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: target)
            let defaultPort = https ? 443 : 80
            head.headers.add(name: "Host", value: port == defaultPort ? host : "\(host):\(port)")
            head.headers.add(name: "User-Agent", value: "FrameFlow-Webhook/1")
            head.headers.add(name: "Content-Type", value: "application/json")
            head.headers.add(name: "Content-Length", value: "\(body.count)")
            head.headers.add(name: "Connection", value: "close")
            for (name, value) in extra { head.headers.add(name: name, value: value) }
            try await outbound.write(.head(head))
            try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: body))))
            try await outbound.write(.end(nil))
            var status: Int?
            for try await part in inbound {
                switch part {
                case .head(let response): status = Int(response.status.code)
                case .body: continue
                case .end: return status ?? 0
                }
            }
            guard let status else { throw NotifyError("webhook closed the connection without an answer") }
            return status
        }
    }
}
