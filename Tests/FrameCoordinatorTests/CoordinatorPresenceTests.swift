import FrameStore
import Foundation
import Logging
import Testing
@testable import FrameCoordinator

/// Which liveness rows are live peers and which an earlier run of this coordinator left.
@Suite struct CoordinatorPresenceTests {
    func presence(_ id: String, http: String, cluster: String) -> CoordinatorPresence {
        // Never connects: only the decision is under test.
        CoordinatorPresence(
            id: id, database: Database(url: "postgresql://127.0.0.1:1/none", logger: Logger(label: "test")),
            ttl: .seconds(3), httpAddress: http, clusterAddress: cluster, logger: Logger(label: "test"))
    }

    func row(_ id: String, http: String, cluster: String) -> CoordinatorRecord {
        CoordinatorRecord(id: id, httpAddress: http, clusterAddress: cluster, startedAt: Date(), expiresAt: Date())
    }

    @Test func anEarlierRunIsTheSameHostOnTheSameFixedAddresses() {
        let me = presence("web-1-0000beef", http: "0.0.0.0:8080", cluster: "0.0.0.0:7070")
        #expect(me.isEarlierRun(row("web-1-0000dead", http: "0.0.0.0:8080", cluster: "0.0.0.0:7070")))
        // Another machine with the same configuration is a peer.
        #expect(!me.isEarlierRun(row("web-2-0000dead", http: "0.0.0.0:8080", cluster: "0.0.0.0:7070")))
        // The same machine on other ports is a peer (two coordinators on one host).
        #expect(!me.isEarlierRun(row("web-1-0000dead", http: "0.0.0.0:8081", cluster: "0.0.0.0:7071")))
        #expect(!me.isEarlierRun(row("web-1-0000beef", http: "0.0.0.0:8080", cluster: "0.0.0.0:7070")), "that is me")
        // Port 0 picks a new port every run: nothing can be concluded.
        let random = presence("web-1-0000beef", http: "127.0.0.1:0", cluster: "127.0.0.1:0")
        #expect(!random.isEarlierRun(row("web-1-0000dead", http: "127.0.0.1:0", cluster: "127.0.0.1:0")))
        #expect(CoordinatorIdentity.host(of: CoordinatorIdentity.generate(host: "a-b.example")) == "a-b.example")
    }

    func ns(_ d: Duration) -> Int64 { d.components.seconds * 1_000_000_000 + d.components.attoseconds / 1_000_000_000 }

    /// The take-over bound, simulated on a timeline: whenever the kill falls and whatever the
    /// survivor's phase, its first check that sees the row expired is at most `ttl` after the
    /// kill; a live coordinator that misses one renewal is never judged dead.
    @Test(arguments: [Duration.seconds(3), .seconds(1), .seconds(10), .milliseconds(300)])
    func aKilledCoordinatorIsTakenOverWithinTheHeartbeatTimeout(ttl: Duration) {
        let t = PresenceTimings(ttl: ttl)
        let check = ns(t.checkEvery), validity = ns(t.validity), limit = ns(ttl)
        #expect(t.renewEvery == t.checkEvery * 2)
        var worst: Int64 = 0
        for killStep in 0..<(4 * 7) {
            // Kill times on and between beats, over two renewal periods.
            let kill = 4 * check + Int64(killStep) * check / 7
            // The last renewal: the latest even beat at or before the kill.
            var beat: Int64 = 0, lastRenewal: Int64 = 0
            while beat * check <= kill {
                if t.renews(onBeat: Int(beat)) { lastRenewal = beat * check }
                beat += 1
            }
            let expiresAt = lastRenewal + validity
            for phaseStep in 0..<5 {
                let phase = check * Int64(2 * phaseStep + 1) / 10
                var seen = phase
                while seen <= expiresAt { seen += check }  // a row is dead once expires_at < now
                worst = max(worst, seen - kill)
                #expect(seen - kill <= limit, "kill at \(kill) ns, survivor phase \(phase) ns: taken over \(seen - kill) ns after")
            }
        }
        #expect(worst > limit / 2, "the bound is not vacuous: \(worst) ns")
        // One renewal lost (beat 2 fails): the renewal after it (beat 4) comes before the row expires.
        #expect(4 * check < 0 + validity)
    }
}
