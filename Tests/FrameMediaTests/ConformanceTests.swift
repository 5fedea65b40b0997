import Foundation
import Testing
import FrameCore
@testable import FrameMedia

/// One generated test video: how ffmpeg makes it.
struct VideoCase: CustomTestStringConvertible, Sendable {
    var name: String
    var file: String
    /// Complete ffmpeg arguments after the global options, with OUT standing for the output path.
    var arguments: [String]
    /// Optional second step reading the first step's output (IN) into OUT, e.g. a stream-copy cut.
    var then: [String]? = nil
    var testDescription: String { name }

    static func lavfi(_ name: String, _ file: String, size: String = "160x120", rate: String = "30", seconds: Double = 6,
                      src: String = "testsrc2", _ encode: [String]) -> VideoCase {
        VideoCase(name: name, file: file,
                  arguments: ["-f", "lavfi", "-i", "\(src)=size=\(size):rate=\(rate)", "-t", "\(seconds)"] + encode + ["OUT"])
    }

    func make(in dir: URL) throws -> String {
        let path = dir.appendingPathComponent(file).path
        guard let then else {
            try Fixtures.ffmpeg(arguments.map { $0 == "OUT" ? path : $0 })
            return path
        }
        let first = dir.appendingPathComponent("step1-" + file).path
        try Fixtures.ffmpeg(arguments.map { $0 == "OUT" ? first : $0 })
        try Fixtures.ffmpeg(then.map { $0 == "OUT" ? path : $0 == "IN" ? first : $0 })
        return path
    }
}

/// Every accepted container with a typical codec, and the timing oddities that break naive
/// samplers: B-frames and edit lists, open GOPs, variable frame rate, non-zero start times,
/// a video that is not stream 0, odd sizes, hidden VP9 frames.
let conformanceCases: [VideoCase] = [
    .lavfi("mp4 h264 b-frames", "h264.mp4", ["-c:v", "libx264", "-bf", "3", "-g", "25", "-pix_fmt", "yuv420p"]),
    .lavfi("mp4 h264 faststart", "h264fs.mp4", ["-c:v", "libx264", "-bf", "2", "-g", "40", "-movflags", "+faststart"]),
    .lavfi("mov prores", "prores.mov", seconds: 3, ["-c:v", "prores_ks", "-profile:v", "0"]),
    .lavfi("mkv hevc open gop", "hevc.mkv", ["-c:v", "libx265", "-x265-params", "log-level=error:keyint=30:min-keyint=30:open-gop=1", "-preset", "ultrafast"]),
    .lavfi("mkv h264 open gop", "h264open.mkv", ["-c:v", "libx264", "-bf", "3", "-x264-params", "open-gop=1:keyint=20:min-keyint=20"]),
    .lavfi("webm vp9 odd size", "vp9.webm", size: "161x121", seconds: 4, ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-g", "24"]),
    .lavfi("avi mpeg4", "mpeg4.avi", ["-c:v", "mpeg4", "-q:v", "5", "-g", "24"]),
    .lavfi("avi mjpeg (intra-only, full range)", "mjpeg.avi", seconds: 4, ["-c:v", "mjpeg", "-q:v", "4", "-pix_fmt", "yuvj422p"]),
    .lavfi("avi mpeg4 with b-frames", "mpeg4b.avi", ["-c:v", "mpeg4", "-bf", "2", "-q:v", "5", "-g", "24"]),
    .lavfi("wmv wmv2", "wmv2.wmv", ["-c:v", "wmv2", "-g", "24"]),
    .lavfi("flv flv1", "flv1.flv", rate: "25", ["-c:v", "flv", "-g", "24"]),
    .lavfi("mpeg4 odd size", "odd.mkv", size: "163x97", seconds: 4, src: "mandelbrot", ["-c:v", "mpeg4", "-g", "12"]),
    .lavfi("ntsc rate", "ntsc.mp4", rate: "30000/1001", ["-c:v", "libx264", "-bf", "2", "-g", "30"]),
    .lavfi("low source rate", "slow.mp4", rate: "2", seconds: 8, ["-c:v", "libx264", "-bf", "1", "-g", "4"]),
    VideoCase(name: "mp4 edit list cut mid-GOP", file: "cut.mp4", arguments: [
        "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=30", "-t", "8", "-c:v", "libx264", "-bf", "3", "-g", "60", "OUT"],
        then: ["-ss", "1.37", "-i", "IN", "-c", "copy", "OUT"]),
    VideoCase(name: "mpeg-ts without index, non-zero start", file: "ts.ts", arguments: [
        "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25", "-t", "6", "-c:v", "libx264", "-bf", "2", "-g", "25", "OUT"]),
    VideoCase(name: "variable frame rate", file: "vfr.mp4", arguments: [
        "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=30:duration=6",
        "-vf", "select='lt(mod(n\\,10)\\,6)+eq(n\\,95)'", "-vsync", "vfr", "-c:v", "libx264", "-bf", "2", "-g", "30", "OUT"]),
    VideoCase(name: "non-zero start mkv", file: "offset.mkv", arguments: [
        "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=24:duration=5",
        "-c:v", "libx264", "-bf", "2", "-g", "24", "-output_ts_offset", "3.37", "OUT"]),
    VideoCase(name: "audio first then video later", file: "av.mp4", arguments: [
        "-f", "lavfi", "-i", "sine=frequency=440:duration=6",
        "-itsoffset", "0.7", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:duration=5",
        "-map", "0:a", "-map", "1:v", "-vsync", "passthrough", "-c:a", "aac", "-c:v", "libx264", "-bf", "2", "-g", "25", "OUT"]),
]

@Suite("Conformance with ffmpeg -vf fps=R -f framemd5")
struct ConformanceTests {
    static let rates = ["1", "0.1", "2.5", "1/3"]

    @Test("same frames as the ffmpeg tool at 1, 0.1, 2.5 and 1/3 fps", arguments: conformanceCases)
    func matchesFFmpeg(_ video: VideoCase) throws {
        let dir = try Fixtures.makeDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = try video.make(in: dir)
        for rate in Self.rates {
            try Fixtures.expectSameFramesAsFFmpeg(video.name, path, rate: rate,
                                                  reusedReverse: rate == "2.5", indexless: rate == "1/3")
        }
    }
}
