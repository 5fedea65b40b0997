import FrameCluster
import Testing
@testable import FrameNode

/// Which coordinator a node dials next (several coordinators on one database).
@Suite struct CoordinatorRotationTests {
    let a = HostPort(host: "10.0.0.1", port: 7070), b = HostPort(host: "10.0.0.2", port: 7070)
    let c = HostPort(host: "coordinators.example", port: 7070)

    @Test func aLostSessionMovesToTheNextCoordinatorAtOnce() {
        var rotation = CoordinatorRotation(addresses: [a, b, c])
        #expect(rotation.current == a)
        // A's session ends (A was SIGKILLed): dial B now, no back-off.
        #expect(rotation.ended(established: true) == false)
        #expect(rotation.current == b)
        // B refuses and C refuses: the third failure in a row completes a round, so back off
        // before trying A again.
        #expect(rotation.ended(established: false) == false)
        #expect(rotation.current == c)
        #expect(rotation.ended(established: false) == true)
        #expect(rotation.current == a)
        // Still nothing: another round, another back-off at its end only.
        #expect(rotation.ended(established: false) == false)
        #expect(rotation.ended(established: false) == false)
        #expect(rotation.ended(established: false) == true)
        // A session again (on A) resets the count: its loss moves on at once.
        #expect(rotation.ended(established: true) == false)
        #expect(rotation.current == b)
    }

    @Test func oneAddressBacksOffBeforeEveryReconnect() {
        var rotation = CoordinatorRotation(addresses: [a])
        #expect(rotation.ended(established: true) == true)
        #expect(rotation.ended(established: false) == true)
        #expect(rotation.current == a)
    }

    @Test func configurationGivesTheListOrTheSingleAddress() throws {
        let single = try ClusterConfig.load(file: nil, environment: [:], overrides: ["node.coordinator=10.0.0.1:7070"])
        #expect(single.node.coordinatorAddresses == [a])
        let several = try ClusterConfig.load(
            file: nil, environment: [:], overrides: ["node.coordinators=10.0.0.1:7070,10.0.0.2:7070"])
        #expect(several.node.coordinatorAddresses == [a, b])
        #expect(throws: ConfigError.self) {
            _ = try ClusterConfig.load(file: nil, environment: [:], overrides: ["node.coordinators=10.0.0.1"])
        }
    }
}
