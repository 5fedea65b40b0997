import FrameAPI
import Foundation
import Testing

/// The server-push hub: audience filtering, resume, bounded buffers and stream limits.
@Suite("Event hub")
struct EventHubTests {
    /// Reads what the stream holds now (the hub yields synchronously, so nothing is in flight).
    func drain(_ sub: EventHub.Subscription, upTo limit: Int = 100) async -> [StreamItem] {
        var items: [StreamItem] = []
        var iterator = sub.stream.makeAsyncIterator()
        while items.count < limit {
            // One heartbeat as a sentinel: everything before it was queued already.
            if items.isEmpty || items.last != .heartbeat { sub.heartbeat() }
            guard let item = await iterator.next() else { break }
            if item == .heartbeat { break }
            items.append(item)
        }
        return items
    }

    func names(_ items: [StreamItem]) -> [String] {
        items.compactMap { if case .event(let e) = $0 { e.data } else { nil } }
    }

    @Test func aUserOnlyReceivesEventsAboutTheirOwnJobs() async throws {
        let hub = EventHub()
        let alice = UUID(), bob = UUID()
        let a = try hub.subscribe(.owner(alice)), b = try hub.subscribe(.owner(bob)), ops = try hub.subscribe(.operators)
        hub.publish(.owner(alice), name: "job", data: "a1")
        hub.publish(.owner(bob), name: "job", data: "b1")
        hub.publish(.operators, name: "cluster", data: "c1")
        hub.publish(.owner(alice), name: "job", data: "a2")
        #expect(names(await drain(a)) == ["a1", "a2"])
        #expect(names(await drain(b)) == ["b1"])
        #expect(names(await drain(ops)) == ["c1"])
    }

    @Test func resumingWithLastEventIDReplaysOnlyWhatWasMissedAndOwn() async throws {
        let hub = EventHub()
        let alice = UUID(), bob = UUID()
        let first = hub.publish(.owner(alice), name: "job", data: "a1")
        hub.publish(.owner(bob), name: "job", data: "b1")
        hub.publish(.owner(alice), name: "job", data: "a2")
        let resumed = try hub.subscribe(.owner(alice), lastEventID: first.id)
        hub.publish(.owner(alice), name: "job", data: "a3")
        #expect(names(await drain(resumed)) == ["a2", "a3"])
        let bobResumed = try hub.subscribe(.owner(bob), lastEventID: first.id)
        #expect(names(await drain(bobResumed)) == ["b1"])
    }

    @Test func anIDFromAnotherProcessOrBeyondTheRingGetsAReset() async throws {
        let hub = EventHub(ringCapacity: 4)
        let user = UUID()
        let old = hub.publish(.owner(user), name: "job", data: "1")
        for i in 2...10 { hub.publish(.owner(user), name: "job", data: "\(i)") }
        #expect(await drain(try hub.subscribe(.owner(user), lastEventID: old.id)) == [.reset])
        #expect(await drain(try hub.subscribe(.owner(user), lastEventID: "zzz-3")) == [.reset])
        #expect(await drain(try hub.subscribe(.owner(user), lastEventID: "garbage")) == [.reset])
    }

    @Test func aSubscriberThatDoesNotReadIsCutOffNotGrown() async throws {
        let hub = EventHub(bufferLimit: 4)
        let user = UUID()
        let slow = try hub.subscribe(.owner(user))
        for i in 0..<50 { hub.publish(.owner(user), name: "job", data: "\(i)") }
        #expect(hub.openStreams == 0)
        var received: [StreamItem] = []
        for await item in slow.stream { received.append(item) }
        // The buffered events, then the end of the stream (the client resumes with Last-Event-ID).
        #expect(received.count == 4)
    }

    @Test func openStreamsAreBoundedAndFreedOnCancel() async throws {
        let hub = EventHub(maxStreams: 2)
        let one = try hub.subscribe(.operators)
        let two = try hub.subscribe(.operators)
        #expect(throws: EventHub.Unavailable.self) { try hub.subscribe(.operators) }
        #expect(hub.refusedStreams == 1)
        one.cancel()
        #expect(hub.openStreams == 1)
        let three = try hub.subscribe(.operators)
        #expect(hub.openStreams == 2)
        withExtendedLifetime((two, three)) {}
    }

    @Test func closingEndsStreamsAndRefusesNewOnes() async throws {
        let hub = EventHub()
        let sub = try hub.subscribe(.operators)
        hub.close()
        var count = 0
        for await _ in sub.stream { count += 1 }
        #expect(count == 0)
        #expect(throws: EventHub.Unavailable.self) { try hub.subscribe(.operators) }
    }
}
