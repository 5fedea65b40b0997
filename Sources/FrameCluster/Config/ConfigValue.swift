import FrameCore
import Foundation

/// The kinds of value a `cluster.yaml` key may hold, with their parsers.
///
/// Every key is parsed from text the same way whether it came from the file,
/// an environment variable or a `--set` flag, so an override can express
/// anything the file can.
enum ConfigKind: Sendable {
    case string, int, double, bool, duration, size, stringList, stringMap, hostPort, path, rational
    case choice([String])

    var expectation: String {
        switch self {
        case .string: "a string"
        case .int: "an integer"
        case .double: "a number"
        case .bool: "true or false"
        case .duration: "a duration such as 500ms, 3s, 2m or a number of seconds"
        case .size: "a size such as 500MB, 5GB or a number of bytes"
        case .stringList: "a list of strings (YAML list or comma-separated)"
        case .stringMap: "a mapping of strings (YAML mapping or key=value,key=value)"
        case .hostPort: "HOST:PORT"
        case .path: "a path"
        case .rational: "a positive rate such as 1, 0.1, 2.5 or 1/3"
        case .choice(let options): "one of " + options.joined(separator: ", ")
        }
    }
}

/// A parsed configuration value.
enum ConfigValue: Sendable, Equatable {
    case string(String)
    case int(Int64)
    case double(Double)
    case bool(Bool)
    case duration(Duration)
    case list([String])
    case map([String: String])
    case hostPort(HostPort)
    case rational(Rational)

    /// Parses a scalar text for `kind`; nil if it does not fit.
    static func parse(_ text: String, as kind: ConfigKind) -> ConfigValue? {
        let t = text.trimmingCharacters(in: .whitespaces)
        switch kind {
        case .string, .path:
            return .string(t)
        case .choice(let options):
            return options.contains(t) ? .string(t) : nil
        case .int:
            return Int64(t).map(ConfigValue.int)
        case .double:
            guard let d = Double(t), d.isFinite else { return nil }
            return .double(d)
        case .bool:
            switch t.lowercased() {
            case "true", "yes", "on", "1": return .bool(true)
            case "false", "no", "off", "0": return .bool(false)
            default: return nil
            }
        case .duration:
            return parseDuration(t).map(ConfigValue.duration)
        case .size:
            return parseSize(t).map(ConfigValue.int)
        case .stringList:
            return .list(t.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
        case .stringMap:
            var map: [String: String] = [:]
            for pair in t.split(separator: ",") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                guard parts.count == 2 else { return nil }
                map[parts[0].trimmingCharacters(in: .whitespaces)] = parts[1].trimmingCharacters(in: .whitespaces)
            }
            return .map(map)
        case .hostPort:
            return HostPort(parsing: t).map(ConfigValue.hostPort)
        case .rational:
            return Rational(parsing: t).map(ConfigValue.rational)
        }
    }

    static func parseDuration(_ t: String) -> Duration? {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        for (suffix, scale) in units where t.hasSuffix(suffix) {
            let number = t.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)
            // "ms" also ends with "s": only accept a clean number before the suffix.
            guard let v = Double(number), v.isFinite else { continue }
            return .milliseconds(Int64((v * scale * 1000).rounded()))
        }
        guard let v = Double(t), v.isFinite else { return nil }
        return .milliseconds(Int64((v * 1000).rounded()))
    }

    static func parseSize(_ t: String) -> Int64? {
        let upper = t.uppercased().replacingOccurrences(of: " ", with: "")
        let units: [(String, Int64)] = [
            ("KIB", 1 << 10), ("MIB", 1 << 20), ("GIB", 1 << 30), ("TIB", 1 << 40),
            ("KB", 1_000), ("MB", 1_000_000), ("GB", 1_000_000_000), ("TB", 1_000_000_000_000), ("B", 1),
        ]
        for (suffix, scale) in units where upper.hasSuffix(suffix) {
            guard let v = Double(upper.dropLast(suffix.count)), v.isFinite, v >= 0 else { return nil }
            return Int64(v * Double(scale))
        }
        return Int64(upper)
    }
}

/// A `host:port` pair; IPv6 hosts are written in brackets (`[::1]:7070`).
public struct HostPort: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public init?(parsing text: String) {
        let hostPart: Substring
        let portPart: Substring
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            hostPart = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { return nil }
            portPart = rest.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            hostPart = text[..<colon]
            portPart = text[text.index(after: colon)...]
        }
        guard !hostPart.isEmpty, let port = Int(portPart), (0...65535).contains(port) else { return nil }
        self.init(host: String(hostPart), port: port)
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
