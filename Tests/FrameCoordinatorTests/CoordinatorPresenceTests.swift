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
}
