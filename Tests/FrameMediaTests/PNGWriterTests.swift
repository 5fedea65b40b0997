import Foundation
import Testing
import FrameCore
@testable import FrameMedia

@Suite("PNG writer")
struct PNGWriterTests {
    /// Deterministic noise (an LCG): incompressible enough that every filter byte matters.
    static func pixels(count: Int, seed: UInt32) -> [UInt8] {
        var x = seed
        return (0..<count).map { _ in
            x = x &* 1_664_525 &+ 1_013_904_223
            return UInt8(truncatingIfNeeded: x >> 24)
        }
    }

    /// The chunk types of a PNG file, in order, with their data.
    static func chunks(_ png: [UInt8]) -> [(String, [UInt8])] {
        var out: [(String, [UInt8])] = []
        var i = 8
        while i + 8 <= png.count {
            let n = png[i..<(i + 4)].reduce(0) { $0 << 8 | Int($1) }
            out.append((String(decoding: png[(i + 4)..<(i + 8)], as: UTF8.self), Array(png[(i + 8)..<(i + 8 + n)])))
            i += 12 + n
        }
        return out
    }

    @Test("ffmpeg decodes the exact pixels back (CRCs checked), RGB and RGBA, from padded rows", arguments: [3, 4])
    func roundTrip(channels: Int) throws {
        let dir = try Fixtures.makeDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (width, height, pad) = (37, 9, 11)
        let lineSize = width * channels + pad
        let source = Self.pixels(count: lineSize * height, seed: UInt32(channels))
        let png = try source.withUnsafeBufferPointer { buffer in
            try PNGWriter().encode(pixels: buffer.baseAddress!, lineSize: lineSize, width: width, height: height,
                                   channels: channels, aspect: nil)
        }
        #expect(Array(png.prefix(8)) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        let file = dir.appendingPathComponent("w.png"), raw = dir.appendingPathComponent("w.raw")
        try Data(png).write(to: file)
        try Fixtures.ffmpeg(["-err_detect", "crccheck+explode", "-i", file.path, "-f", "rawvideo",
                             "-pix_fmt", channels == 4 ? "rgba" : "rgb24", raw.path])
        let decoded = [UInt8](try Data(contentsOf: raw))
        let expected = (0..<height).flatMap { y in source[(y * lineSize)..<(y * lineSize + width * channels)] }
        #expect(decoded == expected)
    }

    @Test("the chunks are the ffmpeg tool's: IHDR, pHYs with the sample aspect ratio when known, IDAT, IEND")
    func chunkLayout() throws {
        let source = [UInt8](repeating: 7, count: 4 * 4 * 3)
        let with = try source.withUnsafeBufferPointer {
            try PNGWriter().encode(pixels: $0.baseAddress!, lineSize: 12, width: 4, height: 4, channels: 3, aspect: (4, 3))
        }
        #expect(Self.chunks(with).map(\.0) == ["IHDR", "pHYs", "IDAT", "IEND"])
        #expect(Self.chunks(with)[0].1 == [0, 0, 0, 4, 0, 0, 0, 4, 8, 2, 0, 0, 0])
        #expect(Self.chunks(with)[1].1 == [0, 0, 0, 4, 0, 0, 0, 3, 0])
        let without = try source.withUnsafeBufferPointer {
            try PNGWriter().encode(pixels: $0.baseAddress!, lineSize: 12, width: 4, height: 4, channels: 3, aspect: (0, 1))
        }
        #expect(Self.chunks(without).map(\.0) == ["IHDR", "IDAT", "IEND"])
        #expect(throws: MediaError.self) {
            try source.withUnsafeBufferPointer {
                try PNGWriter().encode(pixels: $0.baseAddress!, lineSize: 12, width: 4, height: 4, channels: 2, aspect: nil)
            }
        }
    }

    @Test("the default level (libdeflate's fastest) costs a few percent of size against level 2, same pixels")
    func fastestLevel() throws {
        // Structured content with grain: a gradient, flat bands and noise, like decoded footage.
        let (width, height) = (320, 180)
        var noise = Self.pixels(count: width * height * 3, seed: 9)
        for y in 0..<height {
            for x in 0..<(width * 3) {
                let base = y < height / 2 ? (x / 3 + y) & 0xFF : ((x / 48) * 40) & 0xFF
                noise[y * width * 3 + x] = UInt8(truncatingIfNeeded: base + Int(noise[y * width * 3 + x] & 7))
            }
        }
        func encode(_ writer: PNGWriter) throws -> [UInt8] {
            try noise.withUnsafeBufferPointer {
                try writer.encode(pixels: $0.baseAddress!, lineSize: width * 3, width: width, height: height, channels: 3, aspect: nil)
            }
        }
        #expect(PNGWriter.compressionLevel == 1)
        let fast = try encode(PNGWriter()), level2 = try encode(PNGWriter(level: 2))
        #expect(Double(fast.count) <= 1.06 * Double(level2.count), "\(fast.count) vs \(level2.count) at level 2")
        // Same filtered rows, so the same IDAT once inflated: only the deflate effort differs.
        #expect(Self.chunks(fast).map(\.0) == Self.chunks(level2).map(\.0))
    }

    @Test("on grainy footage the files stay within 10 % of ffmpeg's PNG size, and decode to its pixels")
    func sizeNearFFmpeg() throws {
        let dir = try Fixtures.makeDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = try Fixtures.video(dir, "grain.mp4", source: "testsrc2=size=640x360:rate=25:duration=2",
                                      encode: ["-vf", "noise=alls=10:allf=t+u", "-c:v", "libx264", "-crf", "23", "-pix_fmt", "yuv420p"])
        let ours = try EncoderTests.frames(path, rate: Rational(1, 1), options: OutputOptions())
        try Fixtures.ffmpeg(["-i", path, "-vf", "fps=1", dir.appendingPathComponent("ref_%04d.png").path])
        #expect(ours.count == 2)
        var ourBytes = 0, refBytes = 0
        for (i, frame) in ours.enumerated() {
            let ref = dir.appendingPathComponent(String(format: "ref_%04d.png", i + 1))
            let mine = dir.appendingPathComponent("mine_\(i).png")
            try Data(frame.data).write(to: mine)
            #expect(try Fixtures.referenceDigests(mine.path, rate: "1") == Fixtures.referenceDigests(ref.path, rate: "1"), "frame \(i)")
            ourBytes += frame.data.count
            refBytes += try Data(contentsOf: ref).count
        }
        #expect(Double(ourBytes) <= 1.1 * Double(refBytes), "\(ourBytes) vs ffmpeg's \(refBytes)")
    }
}
