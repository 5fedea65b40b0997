#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Crypto
import Foundation

/// The coordinator's generated JWT secret, kept in a file so that access
/// tokens and signed download links survive a restart when `jwt_secret` is
/// not configured.
///
/// The file holds 32 random bytes in base64 and is created with mode 0600,
/// atomically (written to a temporary name, then hard-linked into place, so
/// two coordinators starting at once agree on one secret and nobody reads a
/// half-written file). A file that is too short, or readable by other users,
/// stops start-up with a ``ConfigError`` naming `coordinator.jwt_secret_file`.
///
/// Blocking file calls: run it off the event loops (start-up, thread pool).
public enum SecretFile {
    static let key = "coordinator.jwt_secret_file"

    /// The secret in `url`, created first when the file does not exist.
    public static func loadOrCreate(_ url: URL) throws(ConfigError) -> String {
        if let existing = try load(url) { return existing }
        try generate(url)
        guard let created = try load(url) else { throw fail(url, "could not be read back after it was created") }
        return created
    }

    private static func fail(_ url: URL, _ problem: String) -> ConfigError {
        ConfigError(key: key, problem: "\(url.path) \(problem)", source: "start-up")
    }

    /// The secret, or nil when there is no file.
    private static func load(_ url: URL) throws(ConfigError) -> String? {
        let fd = open(url.path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ENOENT { return nil }
            throw fail(url, "cannot be opened: \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw fail(url, "cannot be inspected: \(String(cString: strerror(errno)))") }
        guard info.st_mode & 0o077 == 0 else {
            throw fail(url, "is readable by other users (mode \(String(info.st_mode & 0o777, radix: 8))); chmod 600 it")
        }
        var bytes = [UInt8](repeating: 0, count: 4096)
        let n = read(fd, &bytes, bytes.count)
        guard n >= 0 else { throw fail(url, "cannot be read: \(String(cString: strerror(errno)))") }
        let text = String(decoding: bytes[..<n], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard text.utf8.count >= 32 else {
            throw fail(url, "holds \(text.utf8.count) bytes, at least 32 are needed; delete it to have a new one generated")
        }
        return text
    }

    private static func generate(_ url: URL) throws(ConfigError) {
        let directory = url.deletingLastPathComponent()
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw fail(url, "cannot be created: its directory cannot be made (\(error))")
        }
        let secret = SymmetricKey(size: .bits256).withUnsafeBytes { Data($0).base64EncodedString() } + "\n"
        let temporary = directory.appendingPathComponent(".\(url.lastPathComponent).\(UInt32.random(in: .min ... .max))")
        let fd = open(temporary.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw fail(url, "cannot be created: \(String(cString: strerror(errno)))") }
        defer { unlink(temporary.path) }
        let bytes = Array(secret.utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd) == 0
        close(fd)
        guard written == bytes.count, synced else { throw fail(url, "cannot be written: \(String(cString: strerror(errno)))") }
        // link(2) fails with EEXIST when another process won the race: then its secret is the one.
        guard link(temporary.path, url.path) == 0 || errno == EEXIST else {
            throw fail(url, "cannot be created: \(String(cString: strerror(errno)))")
        }
        let dirFD = open(directory.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dirFD >= 0 {
            _ = fsync(dirFD)
            close(dirFD)
        }
    }
}
