extension Duration {
    /// Whole milliseconds (truncated): what the protocol's u32 millisecond fields and log lines carry.
    public var milliseconds: Int64 {
        let (s, attos) = components
        return s * 1000 + attos / 1_000_000_000_000_000
    }

    /// Seconds as a floating-point number, for SQL intervals and human-readable figures.
    public var seconds: Double {
        let (s, attos) = components
        return Double(s) + Double(attos) / 1e18
    }
}
