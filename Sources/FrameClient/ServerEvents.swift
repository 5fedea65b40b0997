import FrameCore
import Foundation
import Synchronization
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// One server-sent event: its name (`message` unless the stream said otherwise), its data
/// lines joined with newlines, and the stream's last event id when it was dispatched.
public struct ServerEvent: Sendable, Equatable {
    public var name: String
    public var data: String
    public var lastEventID: String?

    public init(name: String, data: String, lastEventID: String?) {
        self.name = name
        self.data = data
        self.lastEventID = lastEventID
    }
}

/// The `text/event-stream` format (WHATWG HTML, "server-sent events") as a value: feed it
/// bytes as they arrive, in chunks cut anywhere, and it returns the events they complete.
///
/// Lines end with LF, CRLF or CR; `:` lines are comments (the coordinator's keep-alives); an
/// empty line dispatches the event being built, unless it has no data. `id` persists across
/// events (it is what a reconnect sends as `Last-Event-ID`); `retry` is the server's
/// reconnection delay in milliseconds.
public struct EventStreamParser: Sendable {
    private var line: [UInt8] = []
    /// The previous chunk ended with CR: an LF at the start of the next one belongs to it.
    private var afterCR = false
    private var data: [String] = []
    private var name = ""
    public private(set) var lastEventID: String?
    public private(set) var retry: Int?

    public init() {}

    public mutating func feed<Bytes: Sequence>(_ bytes: Bytes) -> [ServerEvent] where Bytes.Element == UInt8 {
        var events: [ServerEvent] = []
        for byte in bytes {
            if afterCR {
                afterCR = false
                if byte == 0x0A { continue }
            }
            switch byte {
            case 0x0D:
                afterCR = true
                if let event = endLine() { events.append(event) }
            case 0x0A:
                if let event = endLine() { events.append(event) }
            default:
                line.append(byte)
            }
        }
        return events
    }

    private mutating func endLine() -> ServerEvent? {
        defer { line.removeAll(keepingCapacity: true) }
        if line.isEmpty {
            defer { data = []; name = "" }
            guard !data.isEmpty else { return nil }
            return ServerEvent(name: name.isEmpty ? "message" : name, data: data.joined(separator: "\n"), lastEventID: lastEventID)
        }
        let text = String(decoding: line, as: UTF8.self)
        if text.hasPrefix(":") { return nil }
        let field: Substring, value: Substring
        if let colon = text.firstIndex(of: ":") {
            field = text[..<colon]
            var rest = text[text.index(after: colon)...]
            if rest.first == " " { rest = rest.dropFirst() }
            value = rest
        } else {
            field = Substring(text)
            value = ""
        }
        switch field {
        case "event": name = String(value)
        case "data": data.append(String(value))
        case "id" where !value.contains("\0"): lastEventID = String(value)
        case "retry" where !value.isEmpty && value.allSatisfy(\.isASCII) && value.allSatisfy(\.isNumber): retry = Int(value)
        default: break
        }
        return nil
    }
}

/// An open `GET /events` stream: ``events`` yields the caller's events until the server ends the
/// stream (it finishes) or the connection fails (it throws); ``cancel()`` closes it.
public final class EventSubscription: Sendable {
    public let events: AsyncThrowingStream<ServerEvent, any Error>
    private let session: URLSession
    private let task: URLSessionDataTask

    init(events: AsyncThrowingStream<ServerEvent, any Error>, session: URLSession, task: URLSessionDataTask) {
        self.events = events
        self.session = session
        self.task = task
    }

    public func cancel() {
        task.cancel()
        session.invalidateAndCancel()
    }

    deinit { cancel() }

    /// Opens `request` and returns once the answer's head is in: a 200 `text/event-stream` is a
    /// subscription; anything else is an ``APIFailure`` (with the problem document's code when
    /// the server sent one), so the caller can tell "no push here" from a stream that broke.
    static func open(_ request: URLRequest, baseURL: URL) async throws(APIFailure) -> EventSubscription {
        let delegate = Delegate()
        let session = URLSession(configuration: .default, delegate: delegate, delegateQueue: nil)
        let task = session.dataTask(with: request)
        let events = AsyncThrowingStream<ServerEvent, any Error> { continuation in
            delegate.events.withLock { $0 = continuation }
            continuation.onTermination = { _ in task.cancel() }
        }
        let head: Result<Void, any Error> = await withCheckedContinuation { continuation in
            delegate.opened.withLock { $0 = continuation }
            task.resume()
        }
        switch head {
        case .success:
            return EventSubscription(events: events, session: session, task: task)
        case .failure(let error):
            session.invalidateAndCancel()
            throw (error as? APIFailure) ?? APIFailure.unreachable(baseURL, error)
        }
    }

    /// URLSession's callbacks (on its serial delegate queue): the head resolves `opened`, body
    /// bytes go through the parser into `events`.
    final class Delegate: NSObject, URLSessionDataDelegate, @unchecked Sendable {
        let opened = Mutex<CheckedContinuation<Result<Void, any Error>, Never>?>(nil)
        let events = Mutex<AsyncThrowingStream<ServerEvent, any Error>.Continuation?>(nil)
        // Touched only on the delegate queue.
        var parser = EventStreamParser()
        var status = 0
        var streaming = false
        var errorBody = Data()
        var retryAfter: String?

        func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
                        completionHandler: @escaping (URLSession.ResponseDisposition) -> Void) {
            let http = response as? HTTPURLResponse
            status = http?.statusCode ?? 0
            retryAfter = http?.value(forHTTPHeaderField: "Retry-After")
            let type = http?.value(forHTTPHeaderField: "Content-Type")?.lowercased() ?? ""
            streaming = status == 200 && type.hasPrefix("text/event-stream")
            if streaming { resolve(.success(())) }
            completionHandler(.allow)
        }

        func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
            guard streaming else { errorBody.append(data.prefix(max(0, 64 * 1024 - errorBody.count))); return }
            let parsed = parser.feed(data)
            guard !parsed.isEmpty else { return }
            events.withLock { continuation in
                for event in parsed { continuation?.yield(event) }
            }
        }

        func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: (any Error)?) {
            if streaming {
                events.withLock { continuation in
                    if let error { continuation?.finish(throwing: error) } else { continuation?.finish() }
                    continuation = nil
                }
                return
            }
            if let error {
                resolve(.failure(error))
            } else if status == 200 {
                resolve(.failure(APIFailure(httpStatus: 200, code: .internalError, message: "GET /events did not answer text/event-stream")))
            } else {
                resolve(.failure(APIFailure.from(status: status, body: errorBody, retryAfter: retryAfter)))
            }
            events.withLock { $0?.finish(); $0 = nil }
        }

        private func resolve(_ result: Result<Void, any Error>) {
            opened.withLock { $0?.resume(returning: result); $0 = nil }
        }
    }
}

extension UserClient {
    /// Opens the caller's event stream (`GET /events`, server push of job changes), resuming
    /// after `lastEventID` when given. A 401 renews the access token once, like every call.
    public func events(lastEventID: String? = nil) async throws(APIFailure) -> EventSubscription {
        func request() -> URLRequest {
            var request = URLRequest(url: url("events"))
            request.setValue("text/event-stream", forHTTPHeaderField: "Accept")
            if let token = accessToken { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
            if let lastEventID { request.setValue(lastEventID, forHTTPHeaderField: "Last-Event-ID") }
            // The stream is quiet between changes; the server's keep-alive comes every 15 s.
            request.timeoutInterval = 60
            return request
        }
        do {
            return try await EventSubscription.open(request(), baseURL: baseURL)
        } catch let failure as APIFailure {
            guard failure.httpStatus == 401, try await renew() else { throw failure }
            return try await EventSubscription.open(request(), baseURL: baseURL)
        } catch {
            throw APIFailure.unreachable(baseURL, error)
        }
    }
}
