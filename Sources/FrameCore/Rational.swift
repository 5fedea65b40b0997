/// An exact rational number `num/den`, as FFmpeg uses for time bases and rates.
///
/// Rates like 1/3 frame per second cannot be written as a decimal, and the
/// sampling rule must agree with FFmpeg to the frame, so rates and time bases
/// stay rational end to end (API, protocol, planner).
public struct Rational: Sendable, Hashable, Codable, CustomStringConvertible {
    public var num: Int32
    public var den: Int32

    public init(_ num: Int32, _ den: Int32) {
        self.num = num
        self.den = den
    }

    public var doubleValue: Double { Double(num) / Double(den) }

    public var description: String { den == 1 ? "\(num)" : "\(num)/\(den)" }

    /// Parses `"2.5"`, `"0.1"`, `"1/3"` or `"30000/1001"` into a reduced rational.
    ///
    /// Decimals are read exactly (`0.1` is 1/10, not the nearest double).
    /// Returns nil for zero, negative, malformed or out-of-range values.
    public init?(parsing text: String) {
        let s = text.trimmingCharacters(in: .whitespaces)
        if let slash = s.firstIndex(of: "/") {
            guard let n = Int64(s[..<slash]), let d = Int64(s[s.index(after: slash)...]),
                  n > 0, d > 0, n <= Int32.max, d <= Int32.max else { return nil }
            self = Rational(reducing: n, d)
            return
        }
        let parts = s.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count <= 2, !s.isEmpty else { return nil }
        let intPart = parts[0].isEmpty ? "0" : String(parts[0])
        let fracPart = parts.count == 2 ? String(parts[1]) : ""
        guard intPart.allSatisfy(\.isASCIIDigit), fracPart.allSatisfy(\.isASCIIDigit),
              fracPart.count <= 6, intPart.count <= 9 else { return nil }
        var den: Int64 = 1
        for _ in 0..<fracPart.count { den *= 10 }
        guard let whole = Int64(intPart) else { return nil }
        let frac = fracPart.isEmpty ? 0 : Int64(fracPart)!
        let num = whole * den + frac
        guard num > 0, num <= Int32.max else { return nil }
        self = Rational(reducing: num, den)
    }

    /// `n/d` reduced to lowest terms; both must be positive and fit in Int32 once reduced.
    public init(reducing n: Int64, _ d: Int64) {
        var a = abs(n), b = abs(d)
        while b != 0 { (a, b) = (b, a % b) }
        let g = max(a, 1)
        self.init(Int32(n / g), Int32(d / g))
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}

import Foundation
