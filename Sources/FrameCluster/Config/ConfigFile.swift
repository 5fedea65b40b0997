import Foundation

/// Finds the configuration file to load.
public enum ConfigFile {
    /// `path` if it exists; nil when it is the default name and absent (then
    /// only defaults and overrides apply); a named file that is missing is
    /// returned as is so loading reports it.
    public static func resolve(_ path: String, defaultName: String = "cluster.yaml") -> URL? {
        if FileManager.default.fileExists(atPath: path) { return URL(fileURLWithPath: path) }
        return path == defaultName ? nil : URL(fileURLWithPath: path)
    }
}

/// The FrameFlow release, reported in HELLO and by `--version`.
public enum FrameFlowVersion {
    public static let current = "0.1.0"
}
