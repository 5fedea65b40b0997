import FrameStore
import Foundation
import Synchronization

/// Who may receive an event: the owner of a job, or operators.
public enum EventAudience: Sendable, Hashable {
    case owner(UUID)
    case operators
}

/// One server-push event: a `text/event-stream` record with a resumable id.
public struct StreamEvent: Sendable, Equatable {
    /// `<hub epoch>-<sequence>`: the epoch changes with every process, so a `Last-Event-ID`
    /// from before a restart is recognised as unknown rather than mistaken for a recent one.
    public var id: String
    public var sequence: UInt64
    public var audience: EventAudience
    /// The SSE `event:` name (`job`, `cluster`, ...).
    public var name: String
    /// One line of JSON.
    public var data: String
}

/// What a subscriber's stream delivers: events, heartbeats, or a note that its gap could not
/// be replayed (the client should reload what it shows).
public enum StreamItem: Sendable, Equatable {
    case event(StreamEvent)
    case heartbeat
    case reset
}

/// The in-process fan-out behind the server-push endpoints.
///
/// Its input is ``publish(_:name:data:)`` (and ``publishJob(_:)``): today the coordinator's
/// ``JobChangeFeed`` and cluster monitor call it; with several coordinators a PostgreSQL
/// LISTEN/NOTIFY reader would call the same method. Each subscriber has a bounded buffer
/// (`bufferLimit` items): a client that does not read fast enough is disconnected instead of
/// growing memory, and resumes with `Last-Event-ID` from the hub's ring of recent events
/// (`ringCapacity`), or gets a `reset` when its gap has left the ring. The number of open
/// streams is capped (`maxStreams`); ``subscribe(_:lastEventID:)`` refuses beyond it.
/// Audience filtering happens here, in one place: a user's subscription only ever matches
/// `.owner(user)` events.
public final class EventHub: Sendable {
    public let maxStreams: Int
    public let bufferLimit: Int
    public let ringCapacity: Int
    public let epoch: String

    struct Subscriber {
        var audience: EventAudience
        var continuation: AsyncStream<StreamItem>.Continuation
    }

    struct State {
        var sequence: UInt64 = 0
        var ring: [StreamEvent] = []
        var subscribers: [Int: Subscriber] = [:]
        var nextSubscriber = 0
        var refused = 0
        var closed = false
    }

    private let state = Mutex(State())

    public init(maxStreams: Int = 512, bufferLimit: Int = 256, ringCapacity: Int = 2048) {
        self.maxStreams = maxStreams
        self.bufferLimit = bufferLimit
        self.ringCapacity = ringCapacity
        epoch = String(UInt32.random(in: 0...UInt32.max), radix: 36)
    }

    /// Refused: the stream limit is reached, or the hub is shutting down.
    public struct Unavailable: Error, Sendable {
        public var reason: String
    }

    /// A live subscription; ``cancel()`` (or dropping the stream) ends it.
    public struct Subscription: Sendable {
        public let stream: AsyncStream<StreamItem>
        let hub: EventHub
        let key: Int
        public func cancel() { hub.remove(key) }
        /// Queues a heartbeat behind any pending events.
        public func heartbeat() { hub.send(.heartbeat, to: key) }
    }

    public var openStreams: Int { state.withLock { $0.subscribers.count } }
    public var refusedStreams: Int { state.withLock { $0.refused } }
    /// Whether any stream of `audience` is open: publishers of costly documents skip them otherwise.
    public func hasSubscribers(_ audience: EventAudience) -> Bool {
        state.withLock { $0.subscribers.values.contains { $0.audience == audience } }
    }

    /// Subscribes `audience`. With `lastEventID`, the events it missed are queued first
    /// (or a `reset` when they are no longer held). Atomic with ``publish(_:name:data:)``:
    /// nothing published meanwhile is lost or duplicated.
    public func subscribe(_ audience: EventAudience, lastEventID: String? = nil) throws(Unavailable) -> Subscription {
        let (stream, continuation) = AsyncStream<StreamItem>.makeStream(bufferingPolicy: .bufferingOldest(bufferLimit))
        let result: Result<Int, Unavailable> = state.withLock { state in
            if state.closed { return .failure(Unavailable(reason: "the coordinator is shutting down")) }
            guard state.subscribers.count < maxStreams else {
                state.refused += 1
                return .failure(Unavailable(reason: "too many open event streams (\(maxStreams))"))
            }
            let key = state.nextSubscriber
            state.nextSubscriber += 1
            if let lastEventID {
                for item in Self.replay(after: lastEventID, epoch: epoch, ring: state.ring, audience: audience) {
                    continuation.yield(item)
                }
            }
            state.subscribers[key] = Subscriber(audience: audience, continuation: continuation)
            return .success(key)
        }
        let key = try result.get()
        continuation.onTermination = { [weak self] _ in self?.remove(key) }
        return Subscription(stream: stream, hub: self, key: key)
    }

    /// The items a subscriber resuming after `lastEventID` must be sent first.
    static func replay(after lastEventID: String, epoch: String, ring: [StreamEvent], audience: EventAudience) -> [StreamItem] {
        let parts = lastEventID.split(separator: "-", maxSplits: 1)
        guard parts.count == 2, parts[0] == epoch, let last = UInt64(parts[1]) else { return [.reset] }
        // The ring holds consecutive sequences; a gap older than its first entry cannot be filled.
        if let first = ring.first, last + 1 < first.sequence { return [.reset] }
        if ring.isEmpty && last > 0 { return [] }
        return ring.filter { $0.sequence > last && $0.audience == audience }.map { .event($0) }
    }

    /// Publishes an event to every subscriber of `audience`; returns it (with its id).
    @discardableResult
    public func publish(_ audience: EventAudience, name: String, data: String) -> StreamEvent {
        // Continuations are finished outside the lock: finishing runs onTermination, which takes it.
        let (event, cutOff): (StreamEvent, [AsyncStream<StreamItem>.Continuation]) = state.withLock { state in
            state.sequence += 1
            let event = StreamEvent(id: "\(epoch)-\(state.sequence)", sequence: state.sequence, audience: audience, name: name, data: data)
            state.ring.append(event)
            if state.ring.count > ringCapacity { state.ring.removeFirst(state.ring.count - ringCapacity) }
            var overflowed: [Int] = []
            for (key, subscriber) in state.subscribers where subscriber.audience == audience {
                if case .dropped = subscriber.continuation.yield(.event(event)) { overflowed.append(key) }
            }
            // A subscriber that cannot keep up is cut off; it resumes from the ring with Last-Event-ID.
            return (event, overflowed.compactMap { state.subscribers.removeValue(forKey: $0)?.continuation })
        }
        for continuation in cutOff { continuation.finish() }
        return event
    }

    /// A job's current state as its owner sees it (the same document as `GET /videos/{id}`).
    @discardableResult
    public func publishJob(_ job: JobRecord) -> StreamEvent {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys]
        let data = (try? encoder.encode(VideoResponse(job))).flatMap { String(data: $0, encoding: .utf8) } ?? "{}"
        return publish(.owner(job.userID), name: "job", data: data)
    }

    /// Ends every stream and refuses new ones (graceful shutdown: open streams must not hold the HTTP server).
    public func close() {
        let subscribers = state.withLock { state in
            state.closed = true
            defer { state.subscribers = [:] }
            return state.subscribers.values
        }
        for subscriber in subscribers { subscriber.continuation.finish() }
    }

    func send(_ item: StreamItem, to key: Int) {
        let cutOff: AsyncStream<StreamItem>.Continuation? = state.withLock { state in
            guard let subscriber = state.subscribers[key] else { return nil }
            guard case .dropped = subscriber.continuation.yield(item) else { return nil }
            return state.subscribers.removeValue(forKey: key)?.continuation
        }
        cutOff?.finish()
    }

    func remove(_ key: Int) {
        let removed = state.withLock { $0.subscribers.removeValue(forKey: key) }
        removed?.continuation.finish()
    }
}
