import Foundation
import Testing
import FrameCore
@testable import FrameMedia

@Suite("Bad inputs fail with the right code")
struct MediaErrorTests {
    func expectCode(_ code: ErrorCode, _ path: String, sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            let info = try MediaProbe.probe(path: path)
            Issue.record("expected \(code.name), probe succeeded: \(info)", sourceLocation: sourceLocation)
        } catch {
            #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
        }
    }

    func write(_ dir: URL, _ name: String, _ bytes: [UInt8]) throws -> String {
        let url = dir.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return url.path
    }

    func truncated(_ path: String, to fraction: Double, in dir: URL, name: String) throws -> String {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        return try write(dir, name, Array(data.prefix(Int(Double(data.count) * fraction))))
    }

    @Test("non-media bytes, text and empty files are NOT_MEDIA")
    func notMedia() throws {
        let dir = try Fixtures.makeDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        var rng = SystemRandomNumberGenerator()
        expectCode(.notMedia, try write(dir, "random.mp4", (0..<50_000).map { _ in UInt8.random(in: 0...255, using: &rng) }))
        expectCode(.notMedia, try write(dir, "notes.mkv", Array(String(repeating: "hello, this is not a video\n", count: 500).utf8)))
        expectCode(.notMedia, try write(dir, "empty.mp4", []))
        expectCode(.ioError, dir.appendingPathComponent("missing.mp4").path)
    }

    @Test("audio-only files are NO_VIDEO_STREAM")
    func audioOnly() throws {
        let dir = try Fixtures.makeDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        for name in ["a.mp4", "a.mkv", "a.flv"] {
            let path = dir.appendingPathComponent(name).path
            try Fixtures.ffmpeg(["-f", "lavfi", "-i", "sine=duration=1", "-c:a", name.hasSuffix("flv") ? "libmp3lame" : "aac", path])
            expectCode(.noVideoStream, path)
        }
    }

    @Test("a codec without a decoder is UNSUPPORTED_CODEC")
    func unsupportedCodec() throws {
        let dir = try Fixtures.makeDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = try VideoCase.lavfi("avi", "m.avi", seconds: 1, ["-c:v", "mpeg4"]).make(in: dir)
        // Rewrite the FourCC (stream header and bitmap header) to one nobody decodes.
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let fourcc = Array("FMP4".utf8)
        var patched = 0
        for i in 0..<(bytes.count - 4) where Array(bytes[i..<(i + 4)]) == fourcc {
            bytes.replaceSubrange(i..<(i + 4), with: Array("QQQQ".utf8))
            patched += 1
        }
        #expect(patched >= 2)
        expectCode(.unsupportedCodec, try write(dir, "unknown.avi", bytes))
    }

    @Test("truncated and damaged files are CORRUPT_MEDIA")
    func corrupt() throws {
        let dir = try Fixtures.makeDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let mp4 = try VideoCase.lavfi("mp4", "a.mp4", seconds: 4, ["-c:v", "libx264"]).make(in: dir)
        let faststart = try VideoCase.lavfi("mp4", "fs.mp4", seconds: 4, ["-c:v", "libx264", "-movflags", "+faststart"]).make(in: dir)
        let mkv = try VideoCase.lavfi("mkv", "a.mkv", seconds: 4, ["-c:v", "libx264"]).make(in: dir)
        expectCode(.corruptMedia, try truncated(mp4, to: 0.6, in: dir, name: "cut.mp4"))        // moov lost
        expectCode(.corruptMedia, try truncated(faststart, to: 0.5, in: dir, name: "cutfs.mp4")) // mdat cut
        expectCode(.corruptMedia, try truncated(mkv, to: 0.5, in: dir, name: "cut.mkv"))
        // The moov box overwritten with garbage: recognised as MP4 by its ftyp, unreadable.
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: faststart)))
        for i in 40..<min(bytes.count, 1500) { bytes[i] = UInt8(truncatingIfNeeded: i &* 31 &+ 7) }
        expectCode(.corruptMedia, try write(dir, "garbage.mp4", bytes))
    }

    @Test("an empty container is ZERO_DURATION")
    func zeroDuration() throws {
        let dir = try Fixtures.makeDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("z.mp4").path
        try Fixtures.ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=160x120:rate=30", "-t", "1", "-frames:v", "0", "-c:v", "libx264", path])
        expectCode(.zeroDuration, path)
    }

    @Test("a 20000-pixel-wide video is ABSURD_DIMENSIONS")
    func absurdDimensions() throws {
        let dir = try Fixtures.makeDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("wide.mkv").path
        try Fixtures.ffmpeg(["-f", "lavfi", "-i", "color=size=20000x16:rate=5", "-t", "0.4", "-c:v", "ffv1", path])
        expectCode(.absurdDimensions, path)
    }

    @Test("damage inside the picture data never crashes the decoder")
    func damagedPayload() throws {
        let dir = try Fixtures.makeDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = try VideoCase.lavfi("mp4", "a.mp4", seconds: 4, ["-c:v", "libx264", "-bf", "2", "-movflags", "+faststart"]).make(in: dir)
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        var state: UInt64 = 42
        for i in stride(from: bytes.count / 3, to: bytes.count - 16, by: 97) {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            bytes[i] = UInt8(truncatingIfNeeded: state >> 33)
        }
        let damaged = try write(dir, "damaged.mp4", bytes)
        do {
            let result = try Fixtures.ourDigests(damaged, rate: Rational(2, 1), segmentSeconds: 1)
            #expect(result.digests.count == Int(result.plan.totalSamples))
        } catch let error as MediaError {
            #expect([.corruptMedia, .decodeFailed].contains(error.code))
        }
    }

    @Test("invalid rates and options are refused")
    func invalidRequests() throws {
        let dir = try Fixtures.makeDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = try VideoCase.lavfi("mp4", "a.mp4", seconds: 1, ["-c:v", "libx264"]).make(in: dir)
        let info = try MediaProbe.probe(path: path)
        #expect { try SegmentPlanner.plan(info, rate: Rational(0, 1)) } throws: { ($0 as? MediaError)?.code == .invalidRate }
        #expect { try SegmentPlanner.plan(info, rate: Rational(5000, 1)) } throws: { ($0 as? MediaError)?.code == .invalidRate }
        #expect { try SegmentPlanner.plan(info, rate: Rational(1, 1), segmentSeconds: 0) } throws: { ($0 as? MediaError)?.code == .invalidOptions }
        let spec = try SegmentPlanner.plan(info, rate: Rational(1, 1))[0]
        let decoder = try SegmentDecoder(path: path)
        #expect { _ = try decoder.run(spec, options: OutputOptions(format: .jpeg, quality: 0)) { _ in } } throws: {
            ($0 as? MediaError)?.code == .invalidOptions
        }
    }
}
