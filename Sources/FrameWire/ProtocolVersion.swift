/// The versions of the node protocol this build speaks, and the rule that
/// picks one for a connection.
///
/// A node announces the range it supports in `HELLO`; the coordinator answers
/// with the highest version both sides support in `WELCOME`, or refuses with
/// `UNSUPPORTED_VERSION`. Keeping the rule here means both sides (and tests)
/// compute the same answer. Version 2 adds one message type, `LEASE_URL`
/// (direct reads from the object store); every version-1 message is
/// unchanged in it (proto-spec/README.md, "Versioning").
public enum ProtocolVersion {
    /// The version this build prefers.
    public static let current: UInt16 = 2
    /// Every version this build can speak.
    public static let supported: ClosedRange<UInt16> = 1...2
    /// The first version with `LEASE_URL`: a session of this version or later may read sources directly.
    public static let directReads: UInt16 = 2

    /// Highest common version, or nil if the ranges don't overlap (or min > max).
    public static func negotiate(min: UInt16, max: UInt16) -> UInt16? {
        negotiate(min: min, max: max, supported: supported)
    }

    /// The same rule against an explicit local range, so tests can exercise
    /// multi-version cases before a second version exists.
    public static func negotiate(min: UInt16, max: UInt16, supported: ClosedRange<UInt16>) -> UInt16? {
        guard min <= max else { return nil }
        let highest = Swift.min(max, supported.upperBound)
        let lowest = Swift.max(min, supported.lowerBound)
        return lowest <= highest ? highest : nil
    }
}
