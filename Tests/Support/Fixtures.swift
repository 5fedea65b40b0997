import Foundation

/// Test videos made with the ffmpeg command line, and ZIP inspection.
public enum Fixtures {
    public static let directory: URL = {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ff-coord-fixtures-\(getpid())")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }()

    @discardableResult
    public static func run(_ tool: String, _ args: [String]) throws -> Data {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tool)
        p.arguments = args
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw NSError(domain: "fixtures", code: Int(p.terminationStatus), userInfo: [NSLocalizedDescriptionKey: "\(tool) \(args) failed"])
        }
        return data
    }

    /// H.264 with B-frames and a 2 s GOP (25 fps, keyframe every 50 frames).
    public static func video(seconds: Int, name: String, size: String = "320x240", faststart: Bool = false) throws -> URL {
        let url = directory.appendingPathComponent("\(seconds)s-\(size)-\(faststart)-\(name)")
        if FileManager.default.fileExists(atPath: url.path) { return url }
        let tmp = directory.appendingPathComponent("tmp-\(UUID().uuidString)-\(name)")
        try run("/usr/bin/ffmpeg", [
            "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=\(size):rate=25:duration=\(seconds)",
            "-c:v", "libx264", "-preset", "ultrafast", "-bf", "2", "-g", "50", "-pix_fmt", "yuv420p",
        ] + (faststart ? ["-movflags", "+faststart"] : []) + ["-y", tmp.path])
        try FileManager.default.moveItem(at: tmp, to: url)
        return url
    }

    /// Keeps the first 4 KiB (header) of `video` and replaces the rest with garbage.
    public static func corrupted(_ video: URL, name: String) throws -> URL {
        let url = directory.appendingPathComponent("corrupt-\(UUID().uuidString)-\(name)")
        var data = try Data(contentsOf: video)
        var rng = SystemRandomNumberGenerator()
        for i in 4096..<data.count { data[i] = UInt8.random(in: 0...255, using: &rng) }
        try data.write(to: url)
        return url
    }

    /// Keeps the first quarter of `video` (a faststart MP4: header and index)
    /// and overwrites the media data after it with garbage of the same length.
    public static func corruptedPayload(_ video: URL, name: String) throws -> URL {
        let url = directory.appendingPathComponent("payload-\(UUID().uuidString)-\(name)")
        var data = try Data(contentsOf: video)
        var rng = SystemRandomNumberGenerator()
        for i in (data.count / 4)..<data.count { data[i] = UInt8.random(in: 0...255, using: &rng) }
        try data.write(to: url)
        return url
    }

    /// The entry names of a ZIP in archive order.
    public static func zipNames(_ zip: URL) throws -> [String] {
        String(decoding: try run("/usr/bin/unzip", ["-Z1", zip.path]), as: UTF8.self)
            .split(separator: "\n").map(String.init).filter { !$0.isEmpty }
    }

    /// Every entry of a ZIP, by name, read with unzip.
    public static func zipEntries(_ zip: URL) throws -> [String: Data] {
        var entries: [String: Data] = [:]
        for name in try zipNames(zip) {
            entries[name] = try run("/usr/bin/unzip", ["-p", zip.path, name])
        }
        return entries
    }
}

/// A fresh database per test on the server in DATABASE_URL.
public enum TestDatabase {
    public static func create() async throws -> String {
        guard let base = ProcessInfo.processInfo.environment["DATABASE_URL"], var components = URLComponents(string: base) else {
            throw NSError(domain: "db", code: 1, userInfo: [NSLocalizedDescriptionKey:
                "DATABASE_URL is not set: run the suite through scripts/test, which starts PostgreSQL"])
        }
        let name = "ff_coord_\(UUID().uuidString.prefix(8).lowercased())"
        try Fixtures.run("/usr/bin/psql", [base, "-qc", "CREATE DATABASE \(name)"])
        components.path = "/\(name)"
        return components.string!
    }
}
