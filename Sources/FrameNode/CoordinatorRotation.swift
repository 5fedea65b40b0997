import FrameCluster

/// Which coordinator a node dials next, as a value (tested alone).
///
/// A node may be given several coordinator addresses (`node.coordinators`), or one name that
/// resolves to several addresses (a DNS name with an A record per coordinator), or both: any of
/// them serves it equally (they share one database). The rotation walks the configured names
/// in order and, for each, the addresses it resolved to (``resolved(_:)``); when a session ends
/// or a dial fails the node moves on to the next address, then to the next name. A name is
/// resolved afresh each time the rotation comes back to it, so a coordinator added to (or
/// removed from) the name is picked up once its current list is exhausted.
///
/// The first coordinator after a lost session is dialled at once: a coordinator that went away
/// is the likely cause, and its leases resume on the next coordinator only while nobody else has
/// claimed them. Only when a whole round of addresses failed in a row does the node back off
/// (the agent's capped, jittered ``ReconnectBackoff``). With one address this is the old rule:
/// back off before every reconnect.
///
/// The name, not the resolved address, stays the coordinator's identity: ``current`` is what
/// the node verifies the coordinator's TLS certificate against.
public struct CoordinatorRotation: Sendable, Equatable {
    /// What to do next.
    public enum Step: Sendable, Equatable {
        /// Resolve the name of ``CoordinatorRotation/current`` (then ``CoordinatorRotation/resolved(_:)``).
        case resolve(HostPort)
        /// Dial `address` (an IP address, or the name itself when it was not resolved) on
        /// `name`'s port; TLS verifies the certificate against `name`.
        case dial(name: HostPort, address: String)
    }

    public let addresses: [HostPort]
    public private(set) var index = 0
    /// The current name's addresses, from its latest resolution; nil: resolve before dialling.
    public private(set) var resolvedAddresses: [String]?
    private var resolvedIndex = 0
    /// How many addresses each name had when last resolved (1 until then): a round's length.
    private var perName: [Int]
    /// Dials or sessions that ended since the last established session (or the last back-off).
    private var endedInRow = 0

    /// `addresses` must not be empty (the configuration always gives at least one).
    public init(addresses: [HostPort]) {
        precondition(!addresses.isEmpty, "a node needs at least one coordinator address")
        self.addresses = addresses
        perName = Array(repeating: 1, count: addresses.count)
    }

    /// The configured name (and port) to reach now.
    public var current: HostPort { addresses[index] }

    /// Resolve the current name, or dial its next address.
    public var next: Step {
        guard let resolvedAddresses, resolvedIndex < resolvedAddresses.count else { return .resolve(current) }
        return .dial(name: current, address: resolvedAddresses[resolvedIndex])
    }

    /// The current name resolved to `found` (duplicates dropped, order kept). An empty list is
    /// a failed resolution: report it with ``ended(established:)`` like a failed dial.
    public mutating func resolved(_ found: [String]) {
        var seen: Set<String> = []
        let unique = found.filter { seen.insert($0).inserted }
        resolvedAddresses = unique
        resolvedIndex = 0
        perName[index] = max(1, unique.count)
    }

    /// The session with (or the dial, or the resolution, of) the current address ended;
    /// `established` when it got as far as WELCOME. Moves to the next address (the next name
    /// once this name's are exhausted) and returns whether to back off before dialling it.
    public mutating func ended(established: Bool) -> Bool {
        if established { endedInRow = 0 }
        endedInRow += 1
        if let resolvedAddresses, resolvedIndex + 1 < resolvedAddresses.count {
            resolvedIndex += 1
        } else {
            index = (index + 1) % addresses.count
            resolvedAddresses = nil
            resolvedIndex = 0
        }
        let round = perName.reduce(0, +)
        guard round > 1 else { return true }
        // A whole round without a session: every coordinator is down or unreachable.
        guard endedInRow >= round else { return false }
        endedInRow = 0
        return true
    }
}
