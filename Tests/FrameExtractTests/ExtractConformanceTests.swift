import Foundation
import Testing
import FrameCore
import FrameExtract
import FrameTestSupport

/// `frameflow extract` end to end on the two classes that once differed from the ffmpeg tool
/// (issue #10) and their nearest neighbours: the ZIP's JPEGs are byte-identical to
/// `ffmpeg -vf fps=R -q:v 3`, so the same frames in the same order. (The segment-wise path
/// is checked against `-f framemd5` over the wider matrix in FrameMediaTests.)
@Suite("Extraction matches the ffmpeg tool on open GOPs and decode-time-only AVI")
struct ExtractConformanceTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var file: String
        var seconds: Double
        var frames: Int?
        var encode: [String]
        var testDescription: String { file }
    }

    static let cases: [Case] = [
        // Open-GOP H.264 in Matroska: the last sample at 0.1 fps is the last frame of a GOP a seek lands in.
        Case(file: "h264-open-gop.mkv", seconds: 25, encode: ["-c:v", "libx264", "-bf", "3", "-x264-params", "keyint=50:open-gop=1"]),
        // Packed B-frames (Xvid in AVI): decode times only, a placeholder packet flagged key.
        Case(file: "xvid-packed.avi", seconds: 15, frames: 434, encode: ["-c:v", "libxvid", "-bf", "2", "-g", "30"]),
        // MPEG-4 Part 2 with B-frames in AVI, unpacked: the I-frame shows behind two B-frames of the previous GOP.
        Case(file: "mpeg4-bframes.avi", seconds: 15, frames: 434, encode: ["-c:v", "mpeg4", "-q:v", "5", "-bf", "3", "-g", "24"]),
        // H.264 in AVI: reorder depth 2, two frames drain out unstamped at the end.
        Case(file: "h264-bframes.avi", seconds: 15, frames: 434, encode: ["-c:v", "libx264", "-bf", "3", "-g", "50"]),
        // HEVC open GOP (CRA) in Matroska.
        Case(file: "hevc-open-gop.mkv", seconds: 15, encode: [
            "-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error:keyint=40:bframes=3:open-gop=1"]),
    ]

    static func make(_ c: Case, in dir: URL) throws -> String {
        let path = dir.appendingPathComponent(c.file).path
        var args = ["-v", "error", "-nostdin", "-y",
                    "-f", "lavfi", "-i", "sine=frequency=440:duration=\(c.seconds)",
                    "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=30:duration=\(c.seconds)",
                    "-map", "1:v", "-map", "0:a", "-c:a", c.file.hasSuffix(".avi") ? "libmp3lame" : "aac"]
        if let frames = c.frames { args += ["-frames:v", "\(frames)"] }
        try Fixtures.run("/usr/bin/ffmpeg", args + c.encode + [path])
        return path
    }

    @Test("the ZIP's JPEGs are the ffmpeg tool's at 0.1, 1 and 2.5 fps", arguments: cases)
    func matchesFFmpeg(_ c: Case) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("frameflow-extract-conf-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = try Self.make(c, in: dir)
        for (i, rate) in ["0.1", "1", "2.5"].enumerated() {
            let refDir = dir.appendingPathComponent("ref\(i)")
            try FileManager.default.createDirectory(at: refDir, withIntermediateDirectories: true)
            // Passthrough: the image2 muxer would otherwise pad the start to the audio's.
            try Fixtures.run("/usr/bin/ffmpeg", ["-v", "error", "-nostdin", "-i", input, "-an", "-vf", "fps=\(rate)",
                                                 "-fps_mode", "passthrough", "-q:v", "3", refDir.appendingPathComponent("%04d.jpg").path])
            let reference = try FileManager.default.contentsOfDirectory(atPath: refDir.path).sorted()
                .map { try Data(contentsOf: refDir.appendingPathComponent($0)) }
            let out = dir.appendingPathComponent("out\(i).zip")
            let summary = try FrameExtractor.run(ExtractRequest(
                input: input, rate: Rational(parsing: rate)!, options: OutputOptions(format: .jpeg, quality: 3), jobs: 2,
                segmentSeconds: 1, output: out))
            let entries = try Fixtures.zipEntries(out)
            let ours = (0..<summary.frames).map { entries[String(format: "frame_%04d.jpg", $0 + 1)] }
            #expect(summary.frames == reference.count, "\(c.file) at \(rate): frame count")
            for (n, data) in ours.enumerated() where n < reference.count {
                #expect(data == reference[n], "\(c.file) at \(rate): frame \(n + 1)")
            }
        }
    }
}
