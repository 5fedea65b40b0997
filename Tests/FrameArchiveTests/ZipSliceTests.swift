import Foundation
import Testing
import FrameCore
import FrameMedia
@testable import FrameArchive

/// ZIPs built from segment slices plus a tail (docs/distributed-assembly.md) are read back by
/// libzip, Info-ZIP's `unzip -t` and Python's zipfile with the same entries and bytes as the
/// libzip archive of the same frames, including past ZIP64's thresholds.
@Suite("ZIP slices")
struct ZipSliceTests {
    struct Frame {
        var name: String
        var bytes: [UInt8]
        var seconds: Double
    }

    static func checksum(_ raw: UnsafeRawBufferPointer) -> UInt32 { CRC32.checksum(raw) }

    /// Frames of varied sizes (one empty), named as a job of `count` frames names them.
    static func frames(_ count: Int, maxSize: Int = 3000) -> [Frame] {
        var rng = SystemRandomNumberGenerator()
        return (0..<count).map { i in
            let size = i == 1 ? 0 : Int.random(in: 1...maxSize, using: &rng)
            return Frame(name: FrameNaming.name(sampleIndex: i, total: count, format: .png),
                         bytes: (0..<size).map { _ in UInt8.random(in: 0...255, using: &rng) }, seconds: Double(i) * 0.5)
        }
    }

    static func manifest(_ frames: [Frame]) -> ArchiveManifest {
        ArchiveManifest(source: "clip.mp4", durationSeconds: 12.5, codec: "h264", width: 320, height: 240,
                        rate: Rational(2, 1), format: .png, frames: frames.map { .init(name: $0.name, seconds: $0.seconds) })
    }

    /// The frames cut into `segments` slices, laid end to end with the tail: the assembled archive.
    static func sliced(_ frames: [Frame], segments: Int, limits: ZipLimits = .standard) throws -> [UInt8] {
        var archive: [UInt8] = []
        var entries: [ZipEntry] = []
        let per = max(1, (frames.count + segments - 1) / segments)
        for start in stride(from: 0, to: frames.count, by: per) {
            var builder = ZipSliceBuilder(limits: limits)
            var slice: [UInt8] = []
            for frame in frames[start..<min(start + per, frames.count)] {
                slice += try builder.header(name: frame.name, data: frame.bytes, seconds: frame.seconds, checksum: checksum)
                slice += frame.bytes
            }
            #expect(UInt64(slice.count) == builder.length)
            let base = UInt64(archive.count)
            entries += builder.entries.map { $0.shifted(by: base) }
            archive += slice
        }
        archive += try ZipTail.build(entries: entries, manifest: manifest(frames), offset: UInt64(archive.count),
                                     checksum: checksum, limits: limits)
        return archive
    }

    static func libzip(_ frames: [Frame], at url: URL) throws {
        let writer = try ArchiveWriter(destination: url)
        for frame in frames { try writer.add(name: frame.name, data: frame.bytes) }
        try writer.finish(manifest: manifest(frames))
    }

    static func unzipTest(_ zip: URL) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/unzip")
        process.arguments = ["-tqq", zip.path]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = out
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// Both archives hold the same names in the same order with the same bytes (Python's zipfile,
    /// which checks every CRC); ours stores everything, libzip deflates the manifest.
    static func expectSameEntries(_ ours: URL, _ reference: URL) throws {
        let a = try ArchiveWriterTests.entries(ours)
        let b = try ArchiveWriterTests.entries(reference)
        #expect(a.map(\.name) == b.map(\.name))
        #expect(a.map(\.data) == b.map(\.data))
        #expect(a.allSatisfy { $0.method == 0 })
    }

    @Test("CRC-32 is zlib's (the check value of \"123456789\")")
    func crcCheckValue() {
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
        let whole = Array("The quick brown fox".utf8)
        let split = whole.withUnsafeBytes { raw in
            CRC32.checksum(UnsafeRawBufferPointer(rebasing: raw[9...]), continuing: CRC32.checksum(UnsafeRawBufferPointer(rebasing: raw[..<9])))
        }
        #expect(split == CRC32.checksum(whole))
    }

    @Test("slices plus the tail are the libzip archive's entries, for libzip, unzip -t and zipfile")
    func slicesMatchLibzip() throws {
        let dir = try ArchiveWriterTests.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let frames = Self.frames(25)
        let ours = dir.appendingPathComponent("sliced.zip")
        try Data(try Self.sliced(frames, segments: 4)).write(to: ours)
        let reference = dir.appendingPathComponent("libzip.zip")
        try Self.libzip(frames, at: reference)

        try Self.expectSameEntries(ours, reference)
        let test = try Self.unzipTest(ours)
        #expect(test.status == 0, "\(test.output)")
        for frame in frames {
            #expect(try ArchiveReader.entry(named: frame.name, in: ours) == frame.bytes)
        }
        // The manifest is the very document libzip's archive carries.
        #expect(try ArchiveReader.entry(named: "manifest.json", in: ours) == ArchiveReader.entry(named: "manifest.json", in: reference))
    }

    @Test("more than 65,535 entries: ZIP64 end records, read by all three")
    func zip64ByEntryCount() throws {
        let dir = try ArchiveWriterTests.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let frames = Self.frames(65_600, maxSize: 8)
        let bytes = try Self.sliced(frames, segments: 7)
        // The ZIP64 end of central directory record and its locator are there.
        let tail = Array(bytes.suffix(22 + 20 + 56))
        #expect(Array(tail[0..<4]) == [0x50, 0x4B, 0x06, 0x06])
        #expect(Array(tail[56..<60]) == [0x50, 0x4B, 0x06, 0x07])
        let ours = dir.appendingPathComponent("many.zip")
        try Data(bytes).write(to: ours)
        // Against the frames themselves rather than a libzip archive: libzip takes half a minute
        // to write 65,600 entries (the small tests above compare with libzip's output).
        let read = try ArchiveWriterTests.entries(ours)
        #expect(read.map(\.name) == frames.map(\.name) + ["manifest.json"])
        #expect(read.dropLast().map(\.data) == frames.map { Data($0.bytes) })
        #expect(read.last?.data == (try Self.manifest(frames).encoded()))
        let test = try Self.unzipTest(ours)
        #expect(test.status == 0, "\(test.output)")
        let last = try #require(frames.last)
        #expect(try ArchiveReader.entry(named: last.name, in: ours) == last.bytes)
        #expect(try ArchiveReader.entry(named: frames[40_000].name, in: ours) == frames[40_000].bytes)
    }

    @Test("ZIP64 sizes and offsets (thresholds lowered so no 4 GiB is written): read by all three")
    func zip64Fields() throws {
        let dir = try ArchiveWriterTests.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let frames = Self.frames(30, maxSize: 2500)
        // Every offset past 1 KiB, every size of 1 KiB or more, and the directory's, take ZIP64 fields.
        let limits = ZipLimits(maxUInt32: 1024)
        let bytes = try Self.sliced(frames, segments: 3, limits: limits)
        let ours = dir.appendingPathComponent("fields64.zip")
        try Data(bytes).write(to: ours)
        let reference = dir.appendingPathComponent("fields64-libzip.zip")
        try Self.libzip(frames, at: reference)

        try Self.expectSameEntries(ours, reference)
        let test = try Self.unzipTest(ours)
        #expect(test.status == 0, "\(test.output)")
        for frame in frames {
            #expect(try ArchiveReader.entry(named: frame.name, in: ours) == frame.bytes)
        }
    }

    @Test("manifest rows that do not describe contiguous slices, or repeat a name, are refused")
    func refusesBadLayouts() throws {
        let frames = Self.frames(3)
        var builder = ZipSliceBuilder()
        var length: UInt64 = 0
        for frame in frames {
            length += UInt64(try builder.header(name: frame.name, data: frame.bytes, seconds: frame.seconds, checksum: Self.checksum).count)
            length += UInt64(frame.bytes.count)
        }
        let entries = builder.entries
        let manifest = Self.manifest(frames)
        _ = try ZipTail.build(entries: entries, manifest: manifest, offset: length, checksum: Self.checksum)
        #expect(throws: ArchiveError.self) {
            try ZipTail.build(entries: Array(entries.dropFirst()), manifest: manifest, offset: length, checksum: Self.checksum)
        }
        #expect(throws: ArchiveError.self) {
            try ZipTail.build(entries: entries, manifest: manifest, offset: length + 1, checksum: Self.checksum)
        }
        var twice = entries
        twice[1].name = twice[0].name
        #expect(throws: ArchiveError.self) {
            try ZipTail.build(entries: twice, manifest: manifest, offset: length, checksum: Self.checksum)
        }
    }
}
