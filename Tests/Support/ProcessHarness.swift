import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Runs the real FrameFlow executables for process-level tests.
///
/// Binaries come from `FRAMEFLOW_BIN_DIR` (set by scripts/test) or the
/// package's `.build/debug`. Every process writes its output to a log file in
/// the test's directory, which is printed when a test fails to help debugging.
public enum Binaries {
    public static var directory: URL {
        if let dir = ProcessInfo.processInfo.environment["FRAMEFLOW_BIN_DIR"] { return URL(fileURLWithPath: dir) }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent(".build/debug")
    }

    public static func url(_ name: String) -> URL { directory.appendingPathComponent(name) }
}

/// A started child process with its log.
public final class ChildProcess: @unchecked Sendable {
    public let process = Process()
    public let log: URL

    public init(_ executable: URL, _ arguments: [String], log: URL, environment: [String: String] = [:],
         stdin: Pipe? = nil, stdout: Pipe? = nil) throws {
        self.log = log
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        process.executableURL = executable
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        process.environment = env
        process.standardOutput = stdout ?? handle
        process.standardError = handle
        if let stdin { process.standardInput = stdin }
        try process.run()
    }

    public var pid: Int32 { process.processIdentifier }
    public func signal(_ sig: Int32) { kill(pid, sig) }

    public func terminate() {
        guard process.isRunning else { return }
        signal(SIGTERM)
        let deadline = Date().addingTimeInterval(5)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { signal(SIGKILL) }
        process.waitUntilExit()
    }

    /// Waits for the process to exit (up to `timeout` seconds); nil if it is still running.
    public func waitForExit(timeout: TimeInterval) async -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { try? await Task.sleep(for: .milliseconds(50)) }
        return process.isRunning ? nil : process.terminationStatus
    }

    public var output: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }
}

/// Runs a command to completion and returns its exit status and output.
public func runCommand(_ executable: URL, _ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    var env = ProcessInfo.processInfo.environment
    for (k, v) in environment { env[k] = v }
    process.environment = env
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// A free TCP port on 127.0.0.1 (bound and released; good enough for tests).
public func freePort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = 0
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
    _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
    return Int(UInt16(bigEndian: addr.sin_port))
}

/// Polls `condition` every 100 ms until it holds or `timeout` passes.
public func eventually(_ timeout: TimeInterval, _ what: String, _ condition: () async throws -> Bool) async throws {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if (try? await condition()) == true { return }
        try await Task.sleep(for: .milliseconds(100))
    }
    struct Timeout: Error, CustomStringConvertible { var description: String }
    throw Timeout(description: "timed out after \(timeout)s waiting for \(what)")
}
