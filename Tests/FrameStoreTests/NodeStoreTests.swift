import Foundation
@testable import FrameStore
import Testing

@Suite("NodeStore", .enabled(if: TestDatabase.enabled))
struct NodeStoreTests {
    @Test("register, heartbeat, offline and list")
    func lifecycle() async throws {
        try await TestDatabase.withFresh { db, _ in
            let nodes = NodeStore(database: db)
            let a = try await nodes.register(
                name: "node-a", softwareVersion: "1.0", slots: 4, labels: ["gpu": "no"], address: "10.0.0.1:5000")
            #expect(a.state == .online && a.adminState == .enabled && a.slots == 4 && a.labels == ["gpu": "no"])
            #expect(a.connectedAt != nil && a.lastHeartbeatAt != nil)
            try await nodes.heartbeat(name: "node-a", activeLeases: 3, framesTotal: 1234)
            var got = try await nodes.get(name: "node-a")
            #expect(got?.activeLeases == 3 && got?.framesTotal == 1234)
            await #expect(throws: StoreError.self) { try await nodes.heartbeat(name: "ghost", activeLeases: 0, framesTotal: 0) }
            try await nodes.markOffline(name: "node-a")
            got = try await nodes.get(name: "node-a")
            #expect(got?.state == .offline && got?.activeLeases == 0)
            // Reconnecting with new details updates the same row.
            let again = try await nodes.register(
                name: "node-a", softwareVersion: "1.1", slots: 8, labels: [:], address: "10.0.0.2:5000")
            #expect(again.state == .online && again.softwareVersion == "1.1" && again.slots == 8 && again.framesTotal == 1234)
            _ = try await nodes.register(name: "node-b", softwareVersion: "1.0", slots: 1, labels: [:], address: "x")
            #expect(try await nodes.list().map(\.name) == ["node-a", "node-b"])
            try await nodes.markOffline(name: "never-seen")  // ignored
        }
    }

    @Test("drain and revoke; revoking an unknown name pre-creates a revoked row")
    func adminStates() async throws {
        try await TestDatabase.withFresh { db, _ in
            let nodes = NodeStore(database: db)
            #expect(try await nodes.setAdminState(name: "unknown", to: .draining) == nil)
            #expect(try await nodes.adminState(name: "unknown") == nil)
            let pre = try await nodes.setAdminState(name: "stolen", to: .revoked)
            #expect(pre?.adminState == .revoked && pre?.state == .offline)
            // A revoked node that connects is recorded but stays offline and revoked.
            let r = try await nodes.register(name: "stolen", softwareVersion: "1", slots: 2, labels: [:], address: "a")
            #expect(r.adminState == .revoked && r.state == .offline)

            _ = try await nodes.register(name: "n1", softwareVersion: "1", slots: 2, labels: [:], address: "a")
            #expect(try await nodes.setAdminState(name: "n1", to: .draining)?.adminState == .draining)
            #expect(try await nodes.adminState(name: "n1") == .draining)
            #expect(try await nodes.register(name: "n1", softwareVersion: "1", slots: 2, labels: [:], address: "a").adminState == .draining)
            #expect(try await nodes.setAdminState(name: "n1", to: .enabled)?.adminState == .enabled)
            #expect(try await nodes.setAdminState(name: "n1", to: .revoked)?.adminState == .revoked)
        }
    }
}
