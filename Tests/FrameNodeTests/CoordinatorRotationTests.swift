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

    @Test func oneNameWithSeveralAddressesIsTriedAddressByAddressThenResolvedAgain() {
        let name = HostPort(host: "coordinators.example", port: 7070)
        var rotation = CoordinatorRotation(addresses: [name])
        #expect(rotation.next == .resolve(name))
        rotation.resolved(["127.0.0.1", "127.0.0.2", "127.0.0.1"])
        #expect(rotation.resolvedAddresses == ["127.0.0.1", "127.0.0.2"], "duplicates dropped, order kept")
        #expect(rotation.next == .dial(name: name, address: "127.0.0.1"))
        // The session on .1 ends (that coordinator died): the name's next address at once.
        #expect(rotation.ended(established: true) == false)
        #expect(rotation.next == .dial(name: name, address: "127.0.0.2"))
        #expect(rotation.current == name, "TLS still verifies against the name")
        // .2 refuses too: the list is exhausted, a whole round failed: back off, then resolve afresh.
        #expect(rotation.ended(established: false) == true)
        #expect(rotation.next == .resolve(name))
        // The name now has three addresses: the round is three dials long.
        rotation.resolved(["127.0.0.3", "127.0.0.1", "127.0.0.2"])
        #expect(rotation.next == .dial(name: name, address: "127.0.0.3"))
        #expect(rotation.ended(established: false) == false)
        #expect(rotation.ended(established: false) == false)
        #expect(rotation.ended(established: false) == true)
        #expect(rotation.next == .resolve(name))
    }

    @Test func aNameThatResolvesToNothingCountsAsAFailedDialAndTheNextNameIsTried() {
        let name = HostPort(host: "gone.example", port: 7070)
        var rotation = CoordinatorRotation(addresses: [name, a])
        #expect(rotation.next == .resolve(name))
        rotation.resolved([])
        #expect(rotation.next == .resolve(name), "nothing to dial")
        #expect(rotation.ended(established: false) == false)
        #expect(rotation.current == a)
        rotation.resolved([a.host])
        #expect(rotation.next == .dial(name: a, address: "10.0.0.1"))
        // Both names failed in a row: a round.
        #expect(rotation.ended(established: false) == true)
        #expect(rotation.next == .resolve(name))
    }

    @Test func severalNamesEachWithSeveralAddressesMakeOneRound() {
        let n1 = HostPort(host: "one.example", port: 7070), n2 = HostPort(host: "two.example", port: 7071)
        var rotation = CoordinatorRotation(addresses: [n1, n2])
        rotation.resolved(["127.0.0.1", "127.0.0.2"])
        var dialled: [CoordinatorRotation.Step] = [rotation.next]
        #expect(rotation.ended(established: false) == false)
        dialled.append(rotation.next)
        #expect(rotation.ended(established: false) == false)
        #expect(rotation.next == .resolve(n2))
        rotation.resolved(["127.0.0.3", "127.0.0.4"])
        dialled.append(rotation.next)
        #expect(rotation.ended(established: false) == false)
        dialled.append(rotation.next)
        #expect(dialled == [
            .dial(name: n1, address: "127.0.0.1"), .dial(name: n1, address: "127.0.0.2"),
            .dial(name: n2, address: "127.0.0.3"), .dial(name: n2, address: "127.0.0.4"),
        ])
        // Four failed dials: the whole round, so back off.
        #expect(rotation.ended(established: false) == true)
        #expect(rotation.next == .resolve(n1))
    }

    @Test func theSystemResolverGivesAnIPLiteralAsItIsAndResolvesLocalhost() async throws {
        let resolver = SystemCoordinatorResolver()
        #expect(try await resolver.addresses(of: "127.0.0.2") == ["127.0.0.2"])
        #expect(try await resolver.addresses(of: "localhost").contains("127.0.0.1"))
    }
}
