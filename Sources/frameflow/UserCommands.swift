import ArgumentParser
import FrameClient
import FrameCore
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// `frameflow login`: saves a token for the coordinator in the user's config directory (0600).
struct LoginCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "login",
        abstract: "Log in to a coordinator; the token is kept in ~/.config/frameflow/credentials.json (mode 0600).",
        discussion: "The password comes from --password-stdin, $FRAMEFLOW_PASSWORD, or a prompt on the terminal.")

    @OptionGroup var client: ClientOptions
    @Option(help: "Account e-mail (default: $FRAMEFLOW_EMAIL).") var email: String?
    @Flag(help: "Read the password from the first line of standard input.") var passwordStdin = false

    func run() async throws {
        try await runClient {
            guard let email = email ?? ProcessInfo.processInfo.environment["FRAMEFLOW_EMAIL"] else {
                throw ValidationError("--email is required (or set FRAMEFLOW_EMAIL)")
            }
            let password: String
            if passwordStdin {
                password = readLine(strippingNewline: true) ?? ""
            } else if let env = ProcessInfo.processInfo.environment["FRAMEFLOW_PASSWORD"] {
                password = env
            } else if isatty(STDIN_FILENO) == 1, let typed = getpass("password for \(email): ") {
                password = String(cString: typed)
            } else {
                throw ValidationError("no password: use --password-stdin or FRAMEFLOW_PASSWORD")
            }
            let base = try client.baseURL(saved: nil)
            let api = UserClient(baseURL: base)
            let login = try await api.login(email: email, password: password)
            let store = client.store
            do {
                try store.save(Credentials(url: base.absoluteString, email: email, accessToken: login.accessToken,
                                           refreshToken: login.refreshToken))
            } catch {
                throw ClientExit(APIFailure(httpStatus: nil, code: .ioError, message: "cannot save the token: \(error)"))
            }
            if client.json {
                printJSON(["url": base.absoluteString, "email": email, "credentials": store.credentialsFile.path])
            } else {
                say("logged in to \(base.absoluteString) as \(email) (token in \(store.credentialsFile.path))")
            }
            return 0
        }
    }
}

/// `frameflow logout`: revokes the saved refresh token and deletes the credentials file.
struct LogoutCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "logout", abstract: "Revoke the saved login and forget it.")

    @OptionGroup var client: ClientOptions

    func run() async throws {
        try await runClient {
            let api = try client.authorizedClient()
            try? await api.logout()
            try? client.store.deleteCredentials()
            if client.json { printJSON(["loggedOut": true]) } else { say("logged out") }
            return 0
        }
    }
}

/// `frameflow upload FILE...`: resumable (tus) uploads with a progress bar per file.
struct UploadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "upload",
        abstract: "Upload videos (resumable: re-running an interrupted upload resumes it).",
        discussion: """
            Each file becomes a video (job). With --wait (or --output) the command follows the jobs \
            until they finish; with --output DIR it also downloads each ZIP to DIR/<file name>.zip.
            """)

    @Argument(help: "Video files.") var files: [String]
    @OptionGroup var client: ClientOptions
    @Option(help: "Frames per second: 1, 0.1, 2.5, 1/3 ... (default: the server's).") var fps: String?
    @Option(help: "png or jpg (default: the server's).") var format: String?
    @Option(help: "JPEG quality 1 (best) to 31.") var quality: Int?
    @Option(help: "Largest frame width in pixels.") var maxWidth: Int?
    @Option(help: "Largest frame height in pixels.") var maxHeight: Int?
    @Option(help: "Node labels the job requires, key=value,key=value.") var labels: String?
    @Flag(help: "Wait until every job has finished.") var wait = false
    @Option(help: "Download each finished job's ZIP into this directory (implies --wait).") var output: String?
    @Option(help: "Upload at most this many bytes per second (e.g. 500000).") var limitRate: Int?
    @Option(help: "With --wait: seconds between status checks.") var interval: Double = 1

    func validate() throws {
        if let quality, !(1...31).contains(quality) { throw ValidationError("--quality must be between 1 and 31") }
        if let format, !["png", "jpg", "jpeg"].contains(format.lowercased()) { throw ValidationError("--format must be png or jpg") }
        if let fps, Rational(parsing: fps) == nil { throw ValidationError("--fps must be a positive rate such as 1, 0.1, 2.5 or 1/3") }
        if let limitRate, limitRate <= 0 { throw ValidationError("--limit-rate must be positive") }
    }

    func run() async throws {
        try await runClient {
            let api = try client.authorizedClient()
            var metadata: [String: String] = [:]
            if let fps { metadata["fps"] = fps }
            if let format { metadata["format"] = format }
            if let quality { metadata["quality"] = "\(quality)" }
            if let maxWidth { metadata["maxWidth"] = "\(maxWidth)" }
            if let maxHeight { metadata["maxHeight"] = "\(maxHeight)" }
            if let labels { metadata["labels"] = labels }
            let uploader = TusUploader(client: api, store: client.store, limitRate: limitRate, metadata: metadata)
            var results: [[String: Any]] = []
            var worst: Int32 = 0
            var accepted: [(file: URL, id: String)] = []
            for path in files {
                let file = URL(fileURLWithPath: path)
                let bar = TransferProgress(label: file.lastPathComponent, verb: "uploaded")
                do {
                    let result = try await uploader.upload(file) { done, total, resumedFrom in
                        bar.update(done, total, resumedFrom: resumedFrom)
                    }
                    accepted.append((file, result.videoID))
                    results.append(["file": path, "videoId": result.videoID, "bytes": result.bytes, "resumedFrom": result.resumedFrom])
                    if !client.json {
                        let resumed = result.resumedFrom > 0 ? ", resumed at \(result.resumedFrom) bytes" : ""
                        say("\(file.lastPathComponent): video \(result.videoID) (\(result.bytes) bytes\(resumed))")
                    }
                } catch {
                    let failure = APIFailure.wrapping(error)
                    FileHandle.standardError.write(Data("frameflow: \(file.lastPathComponent): \(failure.description)\n".utf8))
                    results.append(["file": path, "errorCode": failure.code.name, "error": failure.message])
                    worst = max(worst, failure.exitStatus)
                }
            }
            if wait || output != nil {
                let outcomes = try await JobWatcher(api: api, interval: interval, json: client.json, quiet: client.json)
                    .wait(for: accepted.map(\.id))
                for (i, entry) in results.enumerated() {
                    guard let id = entry["videoId"] as? String, let video = outcomes[id] else { continue }
                    results[i]["status"] = video.status
                    if video.status != "COMPLETED" { worst = max(worst, APIFailure.Exit.jobFailed) }
                }
                if let output {
                    let directory = URL(fileURLWithPath: output)
                    try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
                    for (i, entry) in results.enumerated() {
                        guard let id = entry["videoId"] as? String, outcomes[id]?.status == "COMPLETED" else { continue }
                        let name = URL(fileURLWithPath: entry["file"] as! String).deletingPathExtension().lastPathComponent
                        let zip = directory.appendingPathComponent("\(name).zip")
                        let bar = TransferProgress(label: zip.lastPathComponent, verb: "downloaded")
                        do {
                            _ = try await api.download(id, to: zip) { done, total in bar.update(done, total) }
                            results[i]["zip"] = zip.path
                            if !client.json { say("\(zip.path)") }
                        } catch {
                            let failure = APIFailure.wrapping(error)
                            FileHandle.standardError.write(Data("frameflow: \(id): \(failure.description)\n".utf8))
                            worst = max(worst, failure.exitStatus)
                        }
                    }
                }
            }
            if client.json { printJSON(["items": results]) }
            return worst
        }
    }
}

/// `frameflow videos list|show|cancel|download`.
struct VideosCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "videos", abstract: "Your videos: list, show, cancel, download.",
        subcommands: [List.self, Show.self, Cancel.self, Download.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List your videos, newest first.")
        @OptionGroup var client: ClientOptions
        @Option(help: "Only this status (QUEUED, PROCESSING, COMPLETED, FAILED, CANCELLED, EXPIRED).") var status: String?
        @Option(help: "Page, from 0.") var page = 0
        @Option(help: "Videos per page, 1 to 100.") var size = 20

        func run() async throws {
            try await runClient {
                let answer = try await client.authorizedClient().videos(status: status, page: page, size: size)
                if client.json { printJSON(answer.body); return 0 }
                let rows = [["ID", "STATUS", "PROGRESS", "FRAMES", "FPS", "FILE"]] + answer.value.items.map { v in
                    [v.lowercasedID, v.status, String(format: "%.0f%%", v.progress * 100), "\(v.frameCount)", v.fps, v.originalFilename]
                }
                printTable(rows)
                say("page \(answer.value.page), \(answer.value.items.count) of \(answer.value.totalElements) videos")
                return 0
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one video.")
        @Argument(help: "Video id.") var id: String
        @OptionGroup var client: ClientOptions

        func run() async throws {
            try await runClient {
                let answer = try await client.authorizedClient().video(id)
                if client.json { printJSON(answer.body); return 0 }
                describe(answer.value)
                return 0
            }
        }
    }

    struct Cancel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Cancel a queued or processing video.")
        @Argument(help: "Video id.") var id: String
        @OptionGroup var client: ClientOptions

        func run() async throws {
            try await runClient {
                let answer = try await client.authorizedClient().cancel(id)
                if client.json { printJSON(answer.body) } else { say("video \(answer.value.lowercasedID) \(answer.value.status)") }
                return 0
            }
        }
    }

    struct Download: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Download a completed video's ZIP.")
        @Argument(help: "Video id.") var id: String
        @OptionGroup var client: ClientOptions
        @Option(name: [.short, .long], help: "File to write (default: <id>.zip in the current directory).") var output: String?

        func run() async throws {
            try await runClient {
                let api = try client.authorizedClient()
                let file = URL(fileURLWithPath: output ?? "\(id.lowercased()).zip")
                let bar = TransferProgress(label: file.lastPathComponent, verb: "downloaded")
                let bytes = try await api.download(id, to: file) { done, total in bar.update(done, total) }
                if client.json { printJSON(["file": file.path, "bytes": bytes]) } else { say(file.path) }
                return 0
            }
        }
    }
}

/// `frameflow watch [ID...]`: follows jobs until they finish, from the server's push
/// (`GET /events`), or by polling when the server has none.
struct WatchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "watch",
        abstract: "Follow your jobs' progress until they finish (default: every queued or processing job).",
        discussion: """
            Changes arrive as the server pushes them (GET /events); when the server has no push, or it \
            breaks off and cannot be reopened, watch polls every --interval seconds instead. \
            Exit status 5 when a watched job ends FAILED or CANCELLED.
            """)

    @Argument(help: "Video ids (default: all your unfinished videos).") var ids: [String] = []
    @OptionGroup var client: ClientOptions
    @Option(help: "Seconds between checks when polling.") var interval: Double = 1
    @Flag(help: "Poll every --interval seconds instead of following the server's push.") var poll = false

    func run() async throws {
        try await runClient {
            let api = try client.authorizedClient()
            var watched = ids
            if watched.isEmpty {
                for status in ["QUEUED", "PROCESSING"] {
                    watched += try await api.videos(status: status, size: 100).value.items.map(\.lowercasedID)
                }
                if watched.isEmpty {
                    if client.json { printJSON(["items": [Any]()]) } else { say("no unfinished videos") }
                    return 0
                }
            }
            let outcomes = try await JobWatcher(api: api, interval: interval, json: client.json, push: !poll).wait(for: watched)
            return outcomes.values.allSatisfy { $0.status == "COMPLETED" } ? 0 : APIFailure.Exit.jobFailed
        }
    }
}

/// Follows videos until each is finished, printing a line whenever one changes (JSON lines with
/// `--json`).
///
/// With `push`, it subscribes to `GET /events` and reads each video once (the stream carries
/// changes, not the state before it opened), then prints the `job` events of watched videos and
/// reads them all again on `reset` (a gap the server could not replay). A stream that ends is
/// reopened from its last event id; when the server has no push (the stream cannot be opened) or
/// it keeps ending without delivering, the watcher says so on stderr and polls every `interval`.
struct JobWatcher {
    let api: UserClient
    let interval: Double
    let json: Bool
    /// Print nothing (the caller prints a summary, e.g. `upload --wait --json`).
    var quiet = false
    var push = true

    /// What has been printed and which videos are done.
    struct Progress {
        let ids: Set<String>
        var last: [String: String] = [:]
        var finished: [String: Video] = [:]
        var done: Bool { finished.count >= ids.count }

        /// The line to print for this state of `v` (nil: unchanged, or not watched).
        mutating func observe(_ v: Video, body: Data, json: Bool) -> String? {
            let id = v.lowercasedID
            guard ids.contains(id), finished[id] == nil else { return nil }
            if v.isFinished { finished[id] = v }
            let key = "\(v.status) \(Int(v.progress * 100))%"
            guard last[id] != key else { return nil }
            last[id] = key
            if json {
                guard let object = try? JSONSerialization.jsonObject(with: body),
                      let compact = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return nil }
                return String(decoding: compact, as: UTF8.self)
            }
            let error = v.errorCode.map { " \($0): \(v.errorMessage ?? "")" } ?? ""
            return "\(v.lowercasedID) \(v.originalFilename): \(v.status) \(Int(v.progress * 100))% (\(v.frameCount) frames)\(error)"
        }
    }

    func wait(for ids: [String]) async throws -> [String: Video] {
        var progress = Progress(ids: Set(ids.map { $0.lowercased() }))
        var push = self.push
        var lastEventID: String?
        // Streams in a row that ended before delivering anything.
        var barren = 0
        while !progress.done {
            guard push else {
                try await pollOnce(&progress)
                if !progress.done { try await Task.sleep(for: .milliseconds(Int64(interval * 1000))) }
                continue
            }
            // Errors of the stream (it cannot be opened, or it broke) decide push or polling;
            // errors of reading the videos are the command's, as when polling.
            var opened = false, delivered = false
            var readError: (any Error)?
            do {
                try await api.withEvents(lastEventID: lastEventID) { events in
                    opened = true
                    // The stream carries changes only: read the state now that no change can be missed.
                    do { try await pollOnce(&progress) } catch { readError = error; return }
                    if progress.done { return }
                    for try await event in events {
                        lastEventID = event.lastEventID ?? lastEventID
                        delivered = true
                        switch event.name {
                        case "job":
                            let body = Data(event.data.utf8)
                            if let video = try? Video(json: body) { show(progress.observe(video, body: body, json: json)) }
                        case "reset":
                            do { try await pollOnce(&progress) } catch { readError = error; return }
                        default:
                            break
                        }
                        if progress.done { return }
                    }
                }
            } catch where !opened {
                note("server push unavailable (\(error)); polling every \(interval) s")
                push = false
                continue
            } catch {
                // The connection broke: reopened below, from the last event id.
            }
            if let readError { throw readError }
            barren = delivered ? 0 : barren + 1
            if !progress.done, barren >= 3 {
                note("server push keeps ending; polling every \(interval) s")
                push = false
            }
        }
        return progress.finished
    }

    func pollOnce(_ progress: inout Progress) async throws {
        for id in progress.ids.sorted() where progress.finished[id] == nil {
            let answer = try await api.video(id)
            show(progress.observe(answer.value, body: answer.body, json: json))
        }
    }

    func show(_ line: String?) {
        if let line, !quiet { say(line) }
    }

    /// How the watcher follows the jobs is not output: stderr, so `--json` stays clean.
    func note(_ text: String) {
        if !quiet { FileHandle.standardError.write(Data("frameflow: \(text)\n".utf8)) }
    }
}

func describe(_ v: Video) {
    say("id:       \(v.lowercasedID)")
    say("file:     \(v.originalFilename) (\(v.sizeBytes) bytes\(v.durationSeconds.map { String(format: ", %.1f s", $0) } ?? ""))")
    say("status:   \(v.status) \(Int(v.progress * 100))%")
    say("frames:   \(v.frameCount) at \(v.fps) fps, \(v.format)")
    if let code = v.errorCode { say("error:    \(code): \(v.errorMessage ?? "")") }
}

func printTable(_ rows: [[String]]) {
    guard let header = rows.first else { return }
    let widths = header.indices.map { i in rows.map { $0[i].count }.max() ?? 0 }
    for row in rows {
        say(row.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  "))
    }
}
