import Foundation
import Testing
import FrameCore
import FrameArchive

@Suite("ZIP archive")
struct ArchiveWriterTests {
    static func tempDir() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("frameflow-archive-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// Entries of a ZIP as (name, compression method, size, CRC-checked bytes), read by Python's zipfile.
    static func entries(_ zip: URL) throws -> [(name: String, method: Int, data: Data)] {
        let script = """
        import sys, zipfile, base64, json
        z = zipfile.ZipFile(sys.argv[1])
        assert z.testzip() is None
        print(json.dumps([[i.filename, i.compress_type, base64.b64encode(z.read(i)).decode()] for i in z.infolist()]))
        """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = ["-c", script, zip.path]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        let rows = try JSONSerialization.jsonObject(with: data) as! [[Any]]
        return rows.map { ($0[0] as! String, $0[1] as! Int, Data(base64Encoded: $0[2] as! String)!) }
    }

    @Test("frame names are 1-based and padded to at least 4 digits, more when the count needs it")
    func naming() {
        #expect(FrameNaming.name(sampleIndex: 0, total: 5, format: .png) == "frame_0001.png")
        #expect(FrameNaming.name(sampleIndex: 9998, total: 9999, format: .jpeg) == "frame_9999.jpg")
        #expect(FrameNaming.name(sampleIndex: 0, total: 10000, format: .png) == "frame_00001.png")
        #expect(FrameNaming.name(sampleIndex: 123_455, total: 123_456, format: .png) == "frame_123456.png")
    }

    @Test("frames are stored uncompressed in order, with a manifest, and appear only when finished")
    func writesArchive() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let destination = dir.appendingPathComponent("out.zip")
        let writer = try ArchiveWriter(destination: destination)
        let first: [UInt8] = Array(repeating: 0xAB, count: 5000)
        let second: [UInt8] = (0..<3000).map { UInt8($0 % 251) }
        let spooled = dir.appendingPathComponent("spooled.png")
        try Data(second).write(to: spooled)
        try writer.add(name: "frame_0001.png", data: first)
        try writer.add(name: "frame_0002.png", fileURL: spooled)
        #expect(throws: ArchiveError.self) { try writer.add(name: "frame_0001.png", data: [1]) }
        #expect(!FileManager.default.fileExists(atPath: destination.path))
        let manifest = ArchiveManifest(source: "in.mp4", durationSeconds: 2.5, codec: "h264", width: 160, height: 120,
                                       rate: Rational(1, 3), format: .png,
                                       frames: [.init(name: "frame_0001.png", seconds: 0.4), .init(name: "frame_0002.png", seconds: 1.4)])
        try writer.finish(manifest: manifest)
        #expect(FileManager.default.fileExists(atPath: destination.path))
        #expect(!FileManager.default.fileExists(atPath: writer.temporaryURL.path))
        let entries = try Self.entries(destination)
        #expect(entries.map(\.name) == ["frame_0001.png", "frame_0002.png", "manifest.json"])
        #expect(entries[0].method == 0 && entries[1].method == 0)
        #expect(entries[0].data == Data(first) && entries[1].data == Data(second))
        let json = try JSONSerialization.jsonObject(with: entries[2].data) as! [String: Any]
        #expect(json["source"] as? String == "in.mp4")
        #expect(json["rate"] as? String == "1/3")
        #expect(json["duration_seconds"] as? Double == 2.5)
        #expect(json["codec"] as? String == "h264")
        #expect(json["frame_count"] as? Int == 2)
        #expect((json["frames"] as? [[String: Any]])?.map { $0["seconds"] as? Double } == [0.4, 1.4])
        #expect(try JSONDecoder().decode(ArchiveManifest.self, from: entries[2].data) == manifest)
        #expect(throws: ArchiveError.self) { try writer.add(name: "late.png", data: [1]) }
    }

    @Test("a discarded or abandoned archive leaves no file behind")
    func discard() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let destination = dir.appendingPathComponent("out.zip")
        do {
            let writer = try ArchiveWriter(destination: destination)
            try writer.add(name: "frame_0001.png", data: [1, 2, 3])
        }
        let writer = try ArchiveWriter(destination: destination)
        try writer.add(name: "frame_0001.png", data: [1, 2, 3])
        writer.discard()
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty)
        #expect { try ArchiveWriter(destination: dir.appendingPathComponent("missing/out.zip")) } throws: {
            ($0 as? ArchiveError)?.code == .archiveFailed
        }
    }
}
