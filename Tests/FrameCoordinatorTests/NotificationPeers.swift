import Foundation
import FrameTestSupport

/// Receivers for the notification tests, run as Python child processes so
/// that the signature is checked by an implementation independent of ours.
enum NotificationPeers {
    /// An HTTP server that answers the first `failFirst` POSTs with 500 and
    /// later ones with 200, and logs one JSON line per POST: arrival time,
    /// whether `X-FrameFlow-Signature` matches HMAC-SHA256(secret, "<timestamp>.<body>"), and the body.
    static let webhookScript = #"""
    import hashlib, hmac, json, sys, time
    from http.server import BaseHTTPRequestHandler, HTTPServer
    port, secret, log, fail_first = int(sys.argv[1]), sys.argv[2].encode(), sys.argv[3], int(sys.argv[4])
    count = 0
    class H(BaseHTTPRequestHandler):
        def do_POST(self):
            global count
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            ts = self.headers.get("X-FrameFlow-Timestamp", "")
            sig = self.headers.get("X-FrameFlow-Signature", "")
            want = "sha256=" + hmac.new(secret, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
            count += 1
            with open(log, "a") as f:
                f.write(json.dumps({"t": time.time(), "valid": hmac.compare_digest(want, sig),
                                    "ts": ts, "body": body.decode()}) + "\n")
            status = 500 if count <= fail_first else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()
        def log_message(self, *a): pass
    HTTPServer(("127.0.0.1", port), H).serve_forever()
    """#

    /// Accepts connections and never answers: a receiver that hangs.
    static let hangScript = #"""
    import socket, sys, time
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(16)
    held = []
    while True:
        c, _ = s.accept(); held.append(c)
    """#

    static func python(_ script: String, _ args: [String], name: String) throws -> ChildProcess {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ff-notify-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let file = dir.appendingPathComponent("\(name).py")
        try script.write(to: file, atomically: true, encoding: .utf8)
        return try ChildProcess(
            URL(fileURLWithPath: "/usr/bin/env"), ["python3", "-u", file.path] + args, log: dir.appendingPathComponent("\(name).log"))
    }

    /// aiosmtpd's debugging sink: prints every message it receives to stdout.
    static func smtpSink(port: Int) throws -> ChildProcess {
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("ff-smtp-\(UUID().uuidString).log")
        return try ChildProcess(
            URL(fileURLWithPath: "/usr/bin/env"), ["python3", "-u", "-m", "aiosmtpd", "-n", "-l", "127.0.0.1:\(port)"], log: log)
    }

    struct WebhookHit: Decodable {
        var t: Double
        var valid: Bool
        var ts: String
        var body: String
    }

    static func hits(_ log: URL) -> [WebhookHit] {
        guard let text = try? String(contentsOf: log, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { try? JSONDecoder().decode(WebhookHit.self, from: Data($0.utf8)) }
    }
}
