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
