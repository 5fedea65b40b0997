/// A broken invariant found while replaying one fuzz input: the fuzz targets
/// trap on it (so libFuzzer saves the input), the unit tests that replay the
/// committed corpus report it as a failure.
public struct FuzzViolation: Error, Sendable, CustomStringConvertible {
    public var description: String

    public init(_ description: String) {
        self.description = description
    }
}

/// Throws a ``FuzzViolation`` unless `condition` holds; the message is built only on failure.
@inline(__always)
func require(_ condition: Bool, _ message: @autoclosure () -> String) throws(FuzzViolation) {
    if !condition { throw FuzzViolation(message()) }
}
