import FrameCluster

/// Which coordinator a node dials next, as a value (tested alone).
///
/// A node may be given several coordinator addresses (`node.coordinators`);
/// any of them serves it equally (they share one database), so when a session
/// ends or a dial fails the node moves on to the next address, round robin.
/// The first coordinator after a lost session is dialled at once: a
/// coordinator that went away is the likely cause, and its leases resume on
/// the next coordinator only while nobody else has claimed them. Only when a
/// whole round of addresses failed in a row does the node back off (the
/// agent's capped, jittered ``ReconnectBackoff``). With one address this is
/// the old rule: back off before every reconnect.
public struct CoordinatorRotation: Sendable, Equatable {
    public let addresses: [HostPort]
    public private(set) var index = 0
    /// Dials or sessions that ended since the last established session.
    private var endedInRow = 0

    /// `addresses` must not be empty (the configuration always gives at least one).
    public init(addresses: [HostPort]) {
        precondition(!addresses.isEmpty, "a node needs at least one coordinator address")
        self.addresses = addresses
    }

    /// The address to dial now.
    public var current: HostPort { addresses[index] }

    /// The session with (or the dial of) ``current`` ended; `established` when it got as far
    /// as WELCOME. Moves to the next address and returns whether to back off before dialling it.
    public mutating func ended(established: Bool) -> Bool {
        if established { endedInRow = 0 }
        endedInRow += 1
        index = (index + 1) % addresses.count
        guard addresses.count > 1 else { return true }
        // A whole round without a session: every coordinator is down or unreachable.
        return endedInRow % addresses.count == 0
    }
}
