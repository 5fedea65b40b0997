import Foundation
import Yams

/// The raw, validated-by-kind values of `cluster.yaml` after the environment
/// and flag overrides are applied (flags win over the environment, which wins
/// over the file, which wins over the built-in defaults).
struct ConfigSource: Sendable {
    var values: [String: ConfigValue] = [:]
    var origins: [String: String] = [:]
    /// Directory relative paths from the file are resolved against.
    var baseDirectory: URL

    /// Parses the file (if any), then the environment, then `--set key=value` overrides.
    static func load(
        file: URL?, environment: [String: String], overrides: [String]
    ) throws(ConfigError) -> ConfigSource {
        let cwd = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
        var source = ConfigSource(baseDirectory: file?.deletingLastPathComponent() ?? cwd)
        for key in ConfigKeys.all {
            if let d = key.defaultValue, let v = ConfigValue.parse(d, as: key.kind) {
                source.values[key.path] = v
                source.origins[key.path] = "default"
            }
        }
        if let file {
            let name = file.lastPathComponent
            let text: String
            do { text = try String(contentsOf: file, encoding: .utf8) } catch {
                throw ConfigError(key: "", problem: "cannot read the file: \(error.localizedDescription)", source: file.path)
            }
            let root: Node?
            do { root = try Yams.compose(yaml: text) } catch {
                throw ConfigError(key: "", problem: "not valid YAML: \(error)", source: name)
            }
            if let root {
                guard case .mapping = root else {
                    throw ConfigError(key: "", problem: "the top level must be a mapping of sections", source: name)
                }
                try source.absorb(node: root, prefix: "", origin: name)
            }
        }
        for key in ConfigKeys.all {
            if let text = environment[key.environmentName] {
                try source.set(key: key, text: text, origin: "environment variable \(key.environmentName)")
            }
        }
        for override in overrides {
            let parts = override.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2 else {
                throw ConfigError(key: override, problem: "expected KEY=VALUE", source: "--set")
            }
            let path = String(parts[0])
            guard let key = ConfigKeys.byPath[path] else {
                throw ConfigError(key: path, problem: "unknown key", source: "--set")
            }
            try source.set(key: key, text: String(parts[1]), origin: "--set \(path)")
        }
        return source
    }

    private mutating func set(key: ConfigKey, text: String, origin: String) throws(ConfigError) {
        guard let value = ConfigValue.parse(text, as: key.kind) else {
            throw ConfigError(key: key.path, problem: "expected \(key.kind.expectation), got '\(text)'", source: origin)
        }
        values[key.path] = value
        origins[key.path] = origin
    }

    private mutating func absorb(node: Node, prefix: String, origin: String) throws(ConfigError) {
        guard case .mapping(let mapping) = node else { return }
        for (k, v) in mapping {
            guard case .scalar(let keyScalar) = k else {
                throw ConfigError(key: prefix, problem: "keys must be plain strings", source: origin)
            }
            let path = prefix.isEmpty ? keyScalar.string : "\(prefix).\(keyScalar.string)"
            let line = v.mark.map { "\(origin) line \($0.line)" } ?? origin
            if let key = ConfigKeys.byPath[path] {
                try setFromNode(key: key, node: v, origin: line)
            } else if case .mapping = v, ConfigKeys.all.contains(where: { $0.path.hasPrefix(path + ".") }) {
                try absorb(node: v, prefix: path, origin: origin)
            } else {
                throw ConfigError(key: path, problem: "unknown key", source: line)
            }
        }
    }

    private mutating func setFromNode(key: ConfigKey, node: Node, origin: String) throws(ConfigError) {
        switch (key.kind, node) {
        case (.stringList, .sequence(let seq)):
            var items: [String] = []
            for item in seq {
                guard case .scalar(let s) = item else {
                    throw ConfigError(key: key.path, problem: "expected \(key.kind.expectation)", source: origin)
                }
                items.append(s.string)
            }
            values[key.path] = .list(items)
            origins[key.path] = origin
        case (.stringMap, .mapping(let map)):
            var dict: [String: String] = [:]
            for (k, v) in map {
                guard case .scalar(let ks) = k, case .scalar(let vs) = v else {
                    throw ConfigError(key: key.path, problem: "expected \(key.kind.expectation)", source: origin)
                }
                dict[ks.string] = vs.string
            }
            values[key.path] = .map(dict)
            origins[key.path] = origin
        case (.stringMap, .scalar(let s)) where s.string.isEmpty || s.string == "{}":
            values[key.path] = .map([:])
        case (_, .scalar(let s)):
            if s.string == "~" || s.string == "null" || (s.string.isEmpty && s.style == .plain) {
                values[key.path] = nil
                origins[key.path] = origin
                return
            }
            try set(key: key, text: s.string, origin: origin)
        default:
            throw ConfigError(key: key.path, problem: "expected \(key.kind.expectation)", source: origin)
        }
    }

    // MARK: typed accessors (keys are known to exist with the right kind)

    func origin(_ path: String) -> String { origins[path] ?? "default" }

    func string(_ path: String) -> String? {
        if case .string(let s)? = values[path] { return s.isEmpty ? nil : s }
        return nil
    }

    func path(_ path: String) -> URL? {
        guard let s = string(path) else { return nil }
        if s.hasPrefix("/") { return URL(fileURLWithPath: s) }
        let base = origin(path).hasPrefix("environment") || origin(path).hasPrefix("--set")
            ? URL(fileURLWithPath: FileManager.default.currentDirectoryPath) : baseDirectory
        return base.appendingPathComponent(s).standardizedFileURL
    }

    func int(_ path: String) -> Int64 {
        if case .int(let v)? = values[path] { return v }
        return 0
    }

    func double(_ path: String) -> Double {
        switch values[path] {
        case .double(let v)?: v
        case .int(let v)?: Double(v)
        default: 0
        }
    }

    func duration(_ path: String) -> Duration {
        if case .duration(let d)? = values[path] { return d }
        return .zero
    }

    func bool(_ path: String) -> Bool {
        if case .bool(let v)? = values[path] { return v }
        return false
    }

    func list(_ path: String) -> [String] {
        if case .list(let l)? = values[path] { return l }
        return []
    }

    func map(_ path: String) -> [String: String] {
        if case .map(let m)? = values[path] { return m }
        return [:]
    }

    func hostPort(_ path: String) -> HostPort? {
        if case .hostPort(let h)? = values[path] { return h }
        return nil
    }
}
