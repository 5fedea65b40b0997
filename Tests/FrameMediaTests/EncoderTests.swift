import Foundation
import Testing
import FrameCore
@testable import FrameMedia

@Suite("Image encoding")
struct EncoderTests {
    static func frames(_ path: String, rate: Rational, options: OutputOptions) throws -> [EncodedFrame] {
        let info = try MediaProbe.probe(path: path)
        let decoder = try SegmentDecoder(path: path)
        var out: [EncodedFrame] = []
        for spec in try SegmentPlanner.plan(info, rate: rate, segmentSeconds: 2) {
            _ = try decoder.run(spec, options: options) { out.append($0) }
        }
        return out
    }

    @Test("JPEG files are byte-identical to ffmpeg -q:v Q frame_%04d.jpg", arguments: [2, 10])
    func jpegMatchesFFmpeg(quality: Int) throws {
        let dir = try Fixtures.makeDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = try conformanceCases[0].make(in: dir)
        try Fixtures.ffmpeg(["-i", path, "-vf", "fps=1", "-q:v", "\(quality)", dir.appendingPathComponent("ref_%04d.jpg").path])
        let ours = try Self.frames(path, rate: Rational(1, 1), options: OutputOptions(format: .jpeg, quality: UInt8(quality)))
        #expect(ours.count == 6)
        for (i, frame) in ours.enumerated() {
            let ref = try Data(contentsOf: dir.appendingPathComponent(String(format: "ref_%04d.jpg", i + 1)))
            #expect(frame.data == [UInt8](ref), "frame \(i + 1)")
            #expect(frame.format == .jpeg && frame.width == 160 && frame.height == 120)
        }
        #expect(ours.map(\.sampleIndex) == Array(0..<6))
    }

    /// Every sample of `path` at 1 fps as JPEG, with the table conversion on or off, and how many
    /// pictures went through tables.
    static func jpegs(_ path: String, tables: Bool, options: OutputOptions = OutputOptions(format: .jpeg, quality: 2))
        throws -> (files: [[UInt8]], byTable: Int) {
        let info = try MediaProbe.probe(path: path)
        let decoder = try SegmentDecoder(path: path)
        decoder.useRangeTables = tables
        var files: [[UInt8]] = []
        for spec in try SegmentPlanner.plan(info, rate: Rational(1, 1), segmentSeconds: 2) {
            _ = try decoder.run(spec, options: options) { files.append($0.data) }
        }
        return (files, decoder.tableConversions)
    }

    static let rangeTableCases: [VideoCase] = [
        .lavfi("h264 limited range", "lim.mp4", seconds: 3, ["-c:v", "libx264", "-pix_fmt", "yuv420p"]),
        // Full range flagged: the decoder hands out yuvj420p.
        .lavfi("h264 full range", "full.mp4", seconds: 3, ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-color_range", "pc"]),
        // Odd sizes: the chroma planes round up.
        .lavfi("ffv1 161x121", "odd.mkv", size: "161x121", seconds: 3, ["-c:v", "ffv1", "-pix_fmt", "yuv420p"]),
        .lavfi("mjpeg", "mjpeg.avi", seconds: 3, ["-c:v", "mjpeg", "-pix_fmt", "yuvj420p", "-q:v", "3"]),
    ]

    @Test("JPEG colour conversion by table writes swscale's bytes (limited and full range, odd sizes)", arguments: rangeTableCases)
    func rangeTables(_ video: VideoCase) throws {
        let dir = try Fixtures.makeDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = try video.make(in: dir)
        let on = try Self.jpegs(path, tables: true)
        let off = try Self.jpegs(path, tables: false)
        #expect(on.files.count == 3)
        #expect(on.files == off.files, "\(video.name): JPEGs differ with and without tables")
        #expect(on.byTable == on.files.count && off.byTable == 0)
        // Scaled pictures need swscale's filters: no tables there.
        let scaled = try Self.jpegs(path, tables: true, options: OutputOptions(format: .jpeg, quality: 2, maxWidth: 80))
        #expect(scaled.byTable == 0 && scaled.files.count == 3)
    }

    @Test("range tables are refused when the conversion is not a per-sample map")
    func rangeTablesCheckTheirAssumption() throws {
        // A conversion that mixes neighbouring samples (a horizontal blur) cannot be a table.
        let blurred = try RangeTables.derive { row, x, width in UInt8((Int(row[x]) + Int(row[min(x + 1, width - 1)])) / 2) }
        #expect(blurred == nil)
        // One that does not depend on the sample's row or plane beyond its value can.
        let inverted = try RangeTables.derive { row, x, _ in 255 - row[x] }
        #expect(inverted == RangeTables(luma: (0...255).map { 255 - $0 }, chroma: (0...255).map { 255 - $0 }))
    }

    @Test("PNG files decode to the same RGB pictures as ffmpeg's PNG output")
    func pngMatchesFFmpeg() throws {
        let dir = try Fixtures.makeDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = try conformanceCases[0].make(in: dir)
        let ours = try Self.frames(path, rate: Rational(1, 2), options: OutputOptions())
        try Fixtures.ffmpeg(["-i", path, "-vf", "fps=1/2", dir.appendingPathComponent("ref_%04d.png").path])
        #expect(ours.count == 3)
        for (i, frame) in ours.enumerated() {
            #expect(Array(frame.data.prefix(8)) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
            let mine = dir.appendingPathComponent("mine_\(i).png")
            try Data(frame.data).write(to: mine)
            let a = try Fixtures.referenceDigests(mine.path, rate: "1", extraInput: [])
            let b = try Fixtures.referenceDigests(dir.appendingPathComponent(String(format: "ref_%04d.png", i + 1)).path, rate: "1")
            #expect(a == b, "frame \(i)")
        }
        // Timestamps: sample k of fps=1/2 shows the frame just before (2k + 1) s.
        #expect(ours.map { ($0.seconds * 30).rounded() } == [29, 89, 149])
    }

    @Test("display rotation is applied like the ffmpeg tool's autorotate", arguments: [90, 180, 270])
    func rotation(degrees: Int) throws {
        let dir = try Fixtures.makeDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let plain = try VideoCase.lavfi("plain", "plain.mp4", seconds: 2, ["-c:v", "libx264"]).make(in: dir)
        let rotated = dir.appendingPathComponent("rot.mp4").path
        try Fixtures.ffmpeg(["-i", plain, "-c", "copy", "-metadata:s:v", "rotate=\(degrees)", rotated])
        let ours = try Self.frames(rotated, rate: Rational(1, 1), options: OutputOptions())
        let quarter = degrees != 180
        #expect(ours.allSatisfy { $0.width == (quarter ? 120 : 160) && $0.height == (quarter ? 160 : 120) })
        let mine = dir.appendingPathComponent("mine.png")
        try Data(ours[0].data).write(to: mine)
        let ref = dir.appendingPathComponent("ref.png")
        try Fixtures.ffmpeg(["-i", rotated, "-vf", "fps=1", "-frames:v", "1", ref.path])
        #expect(try Self.psnr(mine.path, ref.path) > 30)
        // Unrotated, the picture differs: the check above is not vacuous.
        let flat = try Self.frames(plain, rate: Rational(1, 1), options: OutputOptions())
        if !quarter {
            let flatURL = dir.appendingPathComponent("flat.png")
            try Data(flat[0].data).write(to: flatURL)
            #expect(try Self.psnr(flatURL.path, ref.path) < 20)
        }
    }

    @Test("max width and height downscale keeping the aspect ratio")
    func boundingBox() throws {
        let dir = try Fixtures.makeDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = try VideoCase.lavfi("p", "p.mp4", size: "320x240", seconds: 1, ["-c:v", "libx264"]).make(in: dir)
        let cases: [(UInt32, UInt32, Int, Int)] = [(160, 0, 160, 120), (0, 60, 80, 60), (100, 100, 100, 75), (1000, 1000, 320, 240)]
        for (mw, mh, w, h) in cases {
            for format in ImageFormat.allCases {
                let frames = try Self.frames(path, rate: Rational(1, 1), options: OutputOptions(format: format, maxWidth: mw, maxHeight: mh))
                #expect(frames.count == 1)
                #expect(frames[0].width == w && frames[0].height == h, "\(mw)x\(mh) \(format)")
                let file = dir.appendingPathComponent("s.\(format.fileExtension)")
                try Data(frames[0].data).write(to: file)
                let probed = try MediaProbe.probe(path: file.path)
                #expect(probed.width == w && probed.height == h)
            }
        }
        #expect(FrameEncoder.outputSize(width: 1920, height: 1080, rotation: 90, options: OutputOptions(maxWidth: 540)) == (540, 960))
    }

    /// PSNR (dB, average) between two images, measured by ffmpeg.
    static func psnr(_ a: String, _ b: String) throws -> Double {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/ffmpeg")
        process.arguments = ["-hide_banner", "-nostdin", "-i", a, "-i", b, "-lavfi", "psnr", "-f", "null", "-"]
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard let range = text.range(of: "average:") else { return 0 }
        let value = text[range.upperBound...].prefix { !$0.isWhitespace }
        return value == "inf" ? 100 : Double(value) ?? 0
    }
}
