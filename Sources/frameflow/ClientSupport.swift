import ArgumentParser
import FrameClient
import FrameCore
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Options every user command shares: where the coordinator is, and `--json`.
struct ClientOptions: ParsableArguments {
    @Option(help: "Coordinator HTTP URL (default: $FRAMEFLOW_URL, else the URL saved by login, else http://127.0.0.1:8080).")
    var url: String?

    @Flag(help: "Print the server's JSON instead of text.")
    var json = false

    var store: CredentialStore { CredentialStore() }

    /// The URL to talk to: --url, $FRAMEFLOW_URL, the saved login's, the default.
    func baseURL(saved: Credentials?) throws -> URL {
        let text = url ?? ProcessInfo.processInfo.environment["FRAMEFLOW_URL"] ?? saved?.url ?? "http://127.0.0.1:8080"
        guard let base = URL(string: text), base.scheme == "http" || base.scheme == "https", base.host != nil else {
            throw ValidationError("invalid coordinator URL '\(text)'")
        }
        return base
    }

    /// A client with the saved login; exit 2 when there is none for this coordinator.
    func authorizedClient() throws -> UserClient {
        let store = self.store
        let saved: Credentials?
        do { saved = try store.loadCredentials() } catch {
            throw ClientExit(APIFailure(httpStatus: 401, code: .unauthorized, message: "cannot read \(store.credentialsFile.path): \(error)"))
        }
        let base = try baseURL(saved: saved)
        guard let saved, saved.url == base.absoluteString else {
            throw ClientExit(APIFailure(httpStatus: 401, code: .unauthorized,
                                        message: "not logged in to \(base.absoluteString): run 'frameflow login'"))
        }
        return UserClient(baseURL: base, accessToken: saved.accessToken, refreshToken: saved.refreshToken) { access, refresh in
            var renewed = saved
            renewed.accessToken = access
            renewed.refreshToken = refresh
            try? store.save(renewed)
        }
    }
}

/// A failed client command: prints `frameflow: CODE: message` on stderr and exits with the
/// documented status (``APIFailure/exitStatus``).
struct ClientExit: Error, CustomStringConvertible {
    let failure: APIFailure
    let status: Int32

    init(_ failure: APIFailure, status: Int32? = nil) {
        self.failure = failure
        self.status = status ?? failure.exitStatus
    }

    var description: String { failure.description }
}

/// Runs a client command's body, turning failures into their exit status.
func runClient(_ body: () async throws -> Int32) async throws {
    let status: Int32
    do {
        status = try await body()
    } catch let exit as ClientExit {
        FileHandle.standardError.write(Data("frameflow: \(exit.failure.description)\n".utf8))
        throw ExitCode(exit.status)
    } catch let failure as APIFailure {
        FileHandle.standardError.write(Data("frameflow: \(failure.description)\n".utf8))
        throw ExitCode(failure.exitStatus)
    }
    if status != 0 { throw ExitCode(status) }
}

/// Writes one line to stdout at once (unbuffered, so lines from a long-running command such as
/// `watch` appear as they happen, in order).
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

/// Prints a server body as indented JSON (sorted keys).
func printJSON(_ body: Data) {
    guard let object = try? JSONSerialization.jsonObject(with: body),
          let pretty = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
    else {
        say(String(decoding: body, as: UTF8.self))
        return
    }
    say(String(decoding: pretty, as: UTF8.self))
}

/// Prints any JSON-compatible value (dictionaries, arrays, strings, numbers) indented.
func printJSON(_ object: Any) {
    guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys]) else { return }
    say(String(decoding: data, as: UTF8.self))
}

var stderrIsTerminal: Bool { isatty(STDERR_FILENO) == 1 }

/// A progress bar per file on a terminal (redrawn in place: bytes, rate, time left), plain lines
/// on anything else (one every 10 % and at the end), always on stderr so stdout stays parseable.
final class TransferProgress: Sendable {
    let label: String
    let verb: String
    let terminal: Bool
    private let state = Mutex<(started: Date, startBytes: Int64, lastDraw: Date, lastDecile: Int64, drawn: Bool)>(
        (Date(), 0, .distantPast, -1, false))

    init(label: String, verb: String, terminal: Bool = stderrIsTerminal) {
        self.label = label
        self.verb = verb
        self.terminal = terminal
    }

    func update(_ done: Int64, _ total: Int64?, resumedFrom: Int64 = 0) {
        state.withLock { s in
            let now = Date()
            if !s.drawn { s.started = now; s.startBytes = resumedFrom }
            let finished = total.map { done >= $0 } ?? false
            let elapsed = max(now.timeIntervalSince(s.started), 0.001)
            let rate = Double(done - s.startBytes) / elapsed
            if terminal {
                guard now.timeIntervalSince(s.lastDraw) >= 0.1 || finished || !s.drawn else { return }
                s.lastDraw = now
                s.drawn = true
                FileHandle.standardError.write(Data(("\r\u{1B}[K" + Self.bar(label, done, total, rate: rate)).utf8))
                if finished { FileHandle.standardError.write(Data("\n".utf8)) }
            } else {
                let decile = total.map { $0 > 0 ? done * 10 / $0 : 10 } ?? done / (10 << 20)
                guard decile != s.lastDecile else { return }
                s.lastDecile = decile
                s.drawn = true
                let resumed = resumedFrom > 0 && done == resumedFrom ? " (resuming at \(resumedFrom) bytes)" : ""
                let of = total.map { " of \(Self.megabytes($0))" } ?? ""
                let percent = total.map { $0 > 0 ? " (\(done * 100 / $0)%)" : " (100%)" } ?? ""
                FileHandle.standardError.write(Data("\(label): \(verb) \(Self.megabytes(done))\(of)\(percent)\(resumed)\n".utf8))
            }
        }
    }

    static func megabytes(_ bytes: Int64) -> String { String(format: "%.1f MB", Double(bytes) / 1e6) }

    static func bar(_ label: String, _ done: Int64, _ total: Int64?, rate: Double) -> String {
        let width = 24
        let fraction = total.map { $0 > 0 ? min(1, Double(done) / Double($0)) : 1 } ?? 0
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        let left = total.map { rate > 0 ? Double($0 - done) / rate : 0 } ?? 0
        let eta = left > 0 ? String(format: " %dm%02ds left", Int(left) / 60, Int(left) % 60) : ""
        let name = label.count > 28 ? String(label.prefix(27)) + "…" : label
        let percent = String(format: "%3d%%", Int(fraction * 100))
        return "\(name) [\(bar)] \(percent) \(megabytes(done))/\(total.map(megabytes) ?? "?") "
            + String(format: "%.1f MB/s", rate / 1e6) + eta
    }
}
