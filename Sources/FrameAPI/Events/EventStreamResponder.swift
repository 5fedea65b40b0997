import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// Turns an ``EventHub`` subscription into a `text/event-stream` response.
///
/// The stream opens with a `retry:` hint and, when given, one initial event (a snapshot);
/// then every matching event as `id:`/`event:`/`data:`, a comment line every `heartbeat` so
/// proxies and the client see the connection alive, and `event: reset` when a resumed gap
/// cannot be replayed. A write to a closed connection throws, which ends the loop and the
/// subscription; a dead client is therefore noticed by the next heartbeat at the latest.
public struct EventStreamResponder: Sendable {
    public let hub: EventHub
    public let heartbeat: Duration

    public init(hub: EventHub, heartbeat: Duration = .seconds(15)) {
        self.hub = hub
        self.heartbeat = heartbeat
    }

    /// The resume point a client presents: the `Last-Event-ID` header EventSource sends on
    /// reconnect, or a `lastEventId` query parameter for a page that reconnects itself.
    public static func lastEventID(_ request: Request) -> String? {
        if let header = request.headers[HTTPField.Name("Last-Event-ID")!], !header.isEmpty { return header }
        return request.uri.queryParameters.get("lastEventId").flatMap { $0.isEmpty ? nil : $0 }
    }

    public func respond(
        _ audience: EventAudience, request: Request,
        initial: (@Sendable () async -> (name: String, data: String)?)? = nil
    ) throws -> Response {
        let subscription: EventHub.Subscription
        do {
            subscription = try hub.subscribe(audience, lastEventID: Self.lastEventID(request))
        } catch {
            // SHUTTING_DOWN until the shared vocabulary has a "server busy" code; the detail says which.
            throw APIError(.serviceUnavailable, .shuttingDown, error.reason)
        }
        let heartbeat = self.heartbeat
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream; charset=utf-8"
        headers[.cacheControl] = "no-store"
        // nginx and similar proxies buffer responses unless told not to.
        headers[HTTPField.Name("X-Accel-Buffering")!] = "no"
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            defer { subscription.cancel() }
            try await writer.write(ByteBuffer(string: "retry: 2000\n\n"))
            if let initial, let first = await initial() {
                try await writer.write(ByteBuffer(string: Self.record(id: nil, name: first.name, data: first.data)))
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    while true {
                        try await Task.sleep(for: heartbeat)
                        subscription.heartbeat()
                    }
                }
                for await item in subscription.stream {
                    switch item {
                    case .event(let event):
                        try await writer.write(ByteBuffer(string: Self.record(id: event.id, name: event.name, data: event.data)))
                    case .heartbeat:
                        try await writer.write(ByteBuffer(string: ": keep-alive\n\n"))
                    case .reset:
                        try await writer.write(ByteBuffer(string: Self.record(id: nil, name: "reset", data: "{}")))
                    }
                }
                group.cancelAll()
            }
            try await writer.finish(nil)
        })
    }

    /// One SSE record. `data` is one line of JSON; any newline would split it, so it is escaped away.
    static func record(id: String?, name: String, data: String) -> String {
        var text = ""
        if let id { text += "id: \(id)\n" }
        text += "event: \(name)\n"
        text += "data: \(data.replacingOccurrences(of: "\n", with: " ").replacingOccurrences(of: "\r", with: " "))\n\n"
        return text
    }
}
