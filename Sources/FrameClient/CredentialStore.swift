import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What `frameflow login` keeps: the coordinator's URL and the tokens.
public struct Credentials: Codable, Sendable, Equatable {
    public var url: String
    public var email: String
    public var accessToken: String
    public var refreshToken: String?

    public init(url: String, email: String, accessToken: String, refreshToken: String?) {
        self.url = url
        self.email = email
        self.accessToken = accessToken
        self.refreshToken = refreshToken
    }
}

/// The CLI's files under the user's config directory: `$FRAMEFLOW_CONFIG_DIR`, else
/// `$XDG_CONFIG_HOME/frameflow`, else `~/.config/frameflow` (mode 0700). Files are written
/// whole to a temporary name with mode 0600 and renamed into place, so a token is never
/// readable by others, not even for an instant, and a crash never leaves half a file.
public struct CredentialStore: Sendable {
    public let directory: URL

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        if let dir = environment["FRAMEFLOW_CONFIG_DIR"], !dir.isEmpty {
            directory = URL(fileURLWithPath: dir)
        } else if let xdg = environment["XDG_CONFIG_HOME"], !xdg.isEmpty {
            directory = URL(fileURLWithPath: xdg).appendingPathComponent("frameflow")
        } else {
            let home = environment["HOME"] ?? NSHomeDirectory()
            directory = URL(fileURLWithPath: home).appendingPathComponent(".config/frameflow")
        }
    }

    public var credentialsFile: URL { directory.appendingPathComponent("credentials.json") }
    /// Upload URLs of unfinished resumable uploads, so a re-run resumes them.
    public var uploadsFile: URL { directory.appendingPathComponent("uploads.json") }

    public func loadCredentials() throws -> Credentials? {
        guard let data = try? Data(contentsOf: credentialsFile) else { return nil }
        return try JSONDecoder().decode(Credentials.self, from: data)
    }

    public func save(_ credentials: Credentials) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try write(try encoder.encode(credentials), to: credentialsFile)
    }

    public func deleteCredentials() throws {
        if FileManager.default.fileExists(atPath: credentialsFile.path) { try FileManager.default.removeItem(at: credentialsFile) }
    }

    func loadUploads() -> [String: String] {
        guard let data = try? Data(contentsOf: uploadsFile) else { return [:] }
        return (try? JSONDecoder().decode([String: String].self, from: data)) ?? [:]
    }

    func saveUploads(_ uploads: [String: String]) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try write(try encoder.encode(uploads), to: uploadsFile)
    }

    /// Writes `data` to a 0600 temporary file in the directory and renames it over `url`.
    func write(_ data: Data, to url: URL) throws {
        let fm = FileManager.default
        try fm.createDirectory(at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let temporary = directory.appendingPathComponent(".\(url.lastPathComponent).\(ProcessInfo.processInfo.processIdentifier).tmp")
        guard fm.createFile(atPath: temporary.path, contents: data, attributes: [.posixPermissions: 0o600]) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: temporary.path])
        }
        // createFile's mode is filtered by the umask; set it outright.
        try fm.setAttributes([.posixPermissions: 0o600], ofItemAtPath: temporary.path)
        guard rename(temporary.path, url.path) == 0 else {
            try? fm.removeItem(at: temporary)
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: url.path])
        }
    }
}
