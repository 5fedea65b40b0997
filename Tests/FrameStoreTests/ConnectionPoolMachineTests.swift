import Testing
@testable import FrameStore

/// The pool's decisions with plain values: slots are Ints, no database, no threads, no clock.
@Suite struct ConnectionPoolMachineTests {
    typealias Machine = ConnectionPoolMachine<Int>

    /// The slot of a grant (`.open` is a new connection the driver would make: -1 here).
    static func slot(_ grant: Machine.Grant) -> Int {
        switch grant {
        case .slot(let slot): slot
        case .open: -1
        }
    }

    static func granted(_ action: Machine.Acquire) -> Machine.Grant? {
        if case .granted(let grant) = action { return grant }
        return nil
    }

    static func waiting(_ action: Machine.Acquire) -> UInt64? {
        if case .wait(let id) = action { return id }
        return nil
    }

    static func resumed(_ release: Machine.Release) -> [(id: UInt64, slot: Int)] {
        guard case .resume(let grants) = release else { return [] }
        return grants.map { ($0.id, slot($0.grant)) }
    }

    @Test func connectionsOpenLazilyUpToTheLimitAndIdleOnesAreReused() {
        var m = Machine(maxConnections: 2)
        #expect(Self.granted(m.acquire(.interactive)).map(Self.slot) == -1)
        #expect(Self.granted(m.acquire(.interactive)).map(Self.slot) == -1)
        #expect(m.open == 2)
        let id = Self.waiting(m.acquire(.interactive))
        #expect(id != nil, "a third caller waits")
        _ = m.park(id!)
        // A release goes to the parked waiter, not to the idle list.
        #expect(Self.resumed(m.release(7, lane: .interactive)).map(\.slot) == [7])
        #expect(m.idle.isEmpty && m.waiters.isEmpty)
        #expect(Self.resumed(m.release(8, lane: .interactive)).isEmpty)
        #expect(m.idle == [8])
        #expect(Self.granted(m.acquire(.interactive)).map(Self.slot) == 8, "an idle connection is reused before opening")
        #expect(m.open == 2)
    }

    @Test func theBulkLaneLeavesTheReservedConnectionsToInteractiveCallers() {
        var m = Machine(maxConnections: 4, reservedForInteractive: 2)
        #expect(m.bulkLimit == 2)
        #expect(Self.granted(m.acquire(.bulk)) != nil)
        #expect(Self.granted(m.acquire(.bulk)) != nil)
        let bulkWaiter = Self.waiting(m.acquire(.bulk))
        #expect(bulkWaiter != nil, "the bulk lane is at its limit although two connections could still be opened")
        #expect(m.open == 2)
        // Interactive callers still get connections at once.
        #expect(Self.granted(m.acquire(.interactive)) != nil)
        #expect(Self.granted(m.acquire(.interactive)) != nil)
        #expect(m.open == 4)
        let interactiveWaiter = Self.waiting(m.acquire(.interactive))!
        _ = m.park(bulkWaiter!)
        _ = m.park(interactiveWaiter)
        // A bulk connection coming back goes to the interactive waiter, although the bulk one waited longer.
        #expect(Self.resumed(m.release(1, lane: .bulk)).map(\.id) == [interactiveWaiter])
        #expect(m.bulkHeld == 1)
        // The next one (any lane) goes to the bulk waiter, now under the limit.
        #expect(Self.resumed(m.release(2, lane: .interactive)).map(\.id) == [bulkWaiter!])
        #expect(m.bulkHeld == 2)
        #expect(m.waiters.isEmpty)
    }

    @Test func aBulkWaiterIsServedByANewConnectionWhenTheLimitFreesWhileThePoolHasRoom() {
        var m = Machine(maxConnections: 4, reservedForInteractive: 3)
        #expect(m.bulkLimit == 1)
        #expect(Self.granted(m.acquire(.bulk)) != nil)
        let waiter = Self.waiting(m.acquire(.bulk))!
        _ = m.park(waiter)
        let resumed = Self.resumed(m.release(5, lane: .bulk))
        #expect(resumed.map(\.id) == [waiter])
        #expect(resumed.map(\.slot) == [5])
        #expect(m.bulkHeld == 1)
    }

    @Test func atLeastOneConnectionIsAlwaysOpenToTheBulkLane() {
        let m = Machine(maxConnections: 1, reservedForInteractive: 2)
        #expect(m.bulkLimit == 1)
        var n = Machine(maxConnections: 3, reservedForInteractive: 0)
        #expect(n.bulkLimit == 3)
        for _ in 0..<3 { #expect(Self.granted(n.acquire(.bulk)) != nil) }
        #expect(Self.waiting(n.acquire(.bulk)) != nil)
    }

    @Test func anOutcomeDecidedBeforeTheCallerParksIsKeptForIt() {
        var m = Machine(maxConnections: 1)
        _ = m.acquire(.interactive)
        let id = Self.waiting(m.acquire(.interactive))!
        // Released before the waiter parked: nothing to resume, the grant is its outcome.
        #expect(Self.resumed(m.release(3, lane: .interactive)).isEmpty)
        guard case .decided(.success(let grant)) = m.park(id) else {
            Issue.record("the waiter should find its connection when it parks")
            return
        }
        #expect(Self.slot(grant) == 3)
        #expect(m.waiters.isEmpty)
        guard case .unknown = m.park(id) else {
            Issue.record("a served waiter is forgotten")
            return
        }
    }

    @Test func aDeadlineFailsAParkedWaiterOrLeavesTheFailureForOneNotParkedYet() {
        var m = Machine(maxConnections: 1)
        _ = m.acquire(.interactive)
        let parked = Self.waiting(m.acquire(.interactive))!
        _ = m.park(parked)
        guard case .failParked(let failed) = m.expire(parked) else {
            Issue.record("a parked waiter past its deadline fails")
            return
        }
        #expect(failed == parked)
        #expect(m.waiters.isEmpty)
        let early = Self.waiting(m.acquire(.interactive))!
        guard case .nothing = m.expire(early) else {
            Issue.record("nothing to resume for a waiter that has not parked")
            return
        }
        guard case .decided(.failure(.timedOut)) = m.park(early) else {
            Issue.record("the waiter finds its timeout when it parks")
            return
        }
        // An expired waiter never takes a connection released later.
        #expect(Self.resumed(m.release(1, lane: .interactive)).isEmpty)
        #expect(m.idle == [1])
    }

    @Test func aDeadlineAfterTheWaiterWasServedChangesNothing() {
        var m = Machine(maxConnections: 1)
        _ = m.acquire(.interactive)
        let id = Self.waiting(m.acquire(.interactive))!
        _ = m.release(2, lane: .interactive)
        guard case .nothing = m.expire(id) else {
            Issue.record("a served waiter does not time out")
            return
        }
        guard case .decided(.success) = m.park(id) else {
            Issue.record("it still gets its connection")
            return
        }
    }

    @Test func shutdownClosesTheIdleFailsTheWaitersAndClosesConnectionsAsTheyComeBack() {
        var m = Machine(maxConnections: 3)
        _ = m.acquire(.interactive)
        _ = m.acquire(.interactive)
        _ = m.acquire(.interactive)
        _ = m.release(9, lane: .interactive)
        _ = m.acquire(.interactive)           // takes 9 again
        _ = m.release(9, lane: .interactive)  // idle: [9]
        #expect(m.idle == [9])
        _ = m.acquire(.interactive)           // takes 9
        let parked = Self.waiting(m.acquire(.bulk))!
        _ = m.park(parked)
        let notParked = Self.waiting(m.acquire(.interactive))!
        let result = m.shutdown()
        #expect(result.close.isEmpty)
        #expect(result.failParked == [parked])
        guard case .decided(.failure(.shutdown)) = m.park(notParked) else {
            Issue.record("a caller parking after the shutdown learns of it")
            return
        }
        guard case .close(4) = m.release(4, lane: .interactive) else {
            Issue.record("a connection returned after the shutdown is closed")
            return
        }
        guard case .shutdown = m.acquire(.interactive) else {
            Issue.record("no connection after the shutdown")
            return
        }
        #expect(m.open == 2)
    }

    @Test func shutdownWithIdleConnectionsClosesThem() {
        var m = Machine(maxConnections: 2)
        _ = m.acquire(.bulk)
        _ = m.release(1, lane: .bulk)
        #expect(m.bulkHeld == 0)
        let result = m.shutdown()
        #expect(result.close == [1])
        #expect(m.open == 0)
    }
}
