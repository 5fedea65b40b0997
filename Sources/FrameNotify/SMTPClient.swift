import Foundation
import NIOCore
import NIOPosix
import NIOSSL

/// Where and as whom e-mail is sent.
public struct SMTPSettings: Sendable, Equatable {
    public var host: String
    public var port: Int
    public var from: String
    /// With both set, the client authenticates with AUTH PLAIN after EHLO.
    public var username: String?
    public var password: String?
    /// TLS from the first byte (SMTPS, usually port 465). Plain SMTP otherwise.
    public var implicitTLS: Bool

    public init(host: String, port: Int = 25, from: String, username: String? = nil, password: String? = nil, implicitTLS: Bool = false) {
        self.host = host
        self.port = port
        self.from = from
        self.username = username
        self.password = password
        self.implicitTLS = implicitTLS
    }
}

/// Sends one plain-text e-mail per connection over SMTP (RFC 5321): EHLO,
/// optional AUTH PLAIN, MAIL FROM, RCPT TO, DATA with dot-stuffing, QUIT.
///
/// One connection per message keeps the client stateless: notifications are
/// rare, and a dispatcher retrying after a failure never inherits a
/// half-finished session. Any reply outside the expected class fails the
/// delivery with the server's own words.
public struct SMTPClient: Sendable {
    public let settings: SMTPSettings
    public let timeout: Duration

    public init(settings: SMTPSettings, timeout: Duration = .seconds(20)) {
        self.settings = settings
        self.timeout = timeout
    }

    /// Sends `subject` and `body` to `recipient`.
    public func send(to recipient: String, subject: String, body: String, date: Date = Date()) async throws {
        guard Self.isPlainAddress(recipient) else { throw NotifyError("invalid recipient address '\(recipient)'") }
        let settings = self.settings
        let message = Self.compose(from: settings.from, to: recipient, subject: subject, body: body, date: date)
        try await withTimeout(timeout, "SMTP delivery to \(settings.host):\(settings.port)") {
            try await Self.converse(settings: settings, recipient: recipient, message: message)
        }
    }

    /// No CR, LF, angle brackets or spaces: an address that cannot inject SMTP commands or headers.
    static func isPlainAddress(_ address: String) -> Bool {
        let parts = address.split(separator: "@", omittingEmptySubsequences: false)
        return parts.count == 2 && !parts[0].isEmpty && !parts[1].isEmpty
            && !address.contains { "\r\n<> ".contains($0) }
    }

    /// The RFC 5322 message with CRLF line ends and dot-stuffing applied (lines starting with "." get another).
    static func compose(from: String, to: String, subject: String, body: String, date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss Z"
        let cleanSubject = subject.replacingOccurrences(of: "\r", with: " ").replacingOccurrences(of: "\n", with: " ")
        let headers = [
            "From: \(from)", "To: \(to)", "Subject: \(cleanSubject)", "Date: \(formatter.string(from: date))",
            "Message-ID: <\(UUID().uuidString.lowercased())@frameflow>", "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit",
        ]
        let bodyLines = body.replacingOccurrences(of: "\r\n", with: "\n").split(separator: "\n", omittingEmptySubsequences: false)
            .map { $0.hasPrefix(".") ? "." + $0 : String($0) }
        return (headers + [""] + bodyLines).joined(separator: "\r\n")
    }

    private static func converse(settings: SMTPSettings, recipient: String, message: String) async throws {
        let tls: NIOSSLContext? = settings.implicitTLS
            ? try NIOSSLContext(configuration: .makeClientConfiguration()) : nil
        let host = settings.host
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(10))
            .connect(host: host, port: settings.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(
                            try NIOSSLClientHandler(context: tls, serverHostname: isIPAddress(host) ? nil : host))
                    }
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LineDecoder()))
                    return try NIOAsyncChannel<String, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        try await channel.executeThenClose { inbound, outbound in
            var session = Session(lines: inbound.makeAsyncIterator(), outbound: outbound)
            try await session.expect(220, after: nil)
            try await session.command("EHLO frameflow", expect: 250)
            if let user = settings.username, let password = settings.password {
                let token = Data(([0] + Array(user.utf8) + [0] + Array(password.utf8))).base64EncodedString()
                try await session.command("AUTH PLAIN \(token)", expect: 235, show: "AUTH PLAIN ***")
            }
            try await session.command("MAIL FROM:<\(settings.from)>", expect: 250)
            try await session.command("RCPT TO:<\(recipient)>", expect: 250)
            try await session.command("DATA", expect: 354)
            try await session.command(message + "\r\n.", expect: 250, show: "message data")
            try? await session.command("QUIT", expect: 221)
        }
    }

    /// One SMTP dialogue: send a command, read its (possibly multi-line) reply.
    struct Session {
        var lines: NIOAsyncChannelInboundStream<String>.AsyncIterator
        let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>

        mutating func command(_ text: String, expect code: Int, show: String? = nil) async throws {
            try await outbound.write(ByteBuffer(string: text + "\r\n"))
            try await expect(code, after: show ?? text)
        }

        /// Reads a reply and checks its class (2xx/3xx) against `code`'s.
        mutating func expect(_ code: Int, after command: String?) async throws {
            var reply: [String] = []
            while true {
                guard let line = try await lines.next() else {
                    throw NotifyError("SMTP server closed the connection\(command.map { " after \($0)" } ?? "")")
                }
                reply.append(line)
                // "250-..." continues a multi-line reply; "250 ..." (or a bare "250") ends it.
                if line.count < 4 || line[line.index(line.startIndex, offsetBy: 3)] != "-" { break }
            }
            let last = reply.last ?? ""
            guard let got = Int(last.prefix(3)), got / 100 == code / 100 else {
                throw NotifyError("SMTP \(command ?? "greeting"): \(reply.joined(separator: " / "))")
            }
        }
    }
}

/// Whether `host` is a literal IPv4 or IPv6 address (TLS SNI must not carry one).
func isIPAddress(_ host: String) -> Bool {
    (try? SocketAddress(ipAddress: host, port: 0)) != nil
}
