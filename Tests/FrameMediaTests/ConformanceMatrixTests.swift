import Foundation
import Testing
import FrameCore
@testable import FrameMedia

extension VideoCase {
    /// A video with two scene cuts (testsrc2, mandelbrot, testsrc2 in another hue: encoders
    /// put keyframes at cuts, so GOPs are irregular), 160x120, and a sine track unless
    /// `audio` is false (audio moves the container start time the fps rule counts from).
    /// `frames` cuts the video to an exact frame count, to put the end bound where rounding
    /// differs by one frame.
    static func scenes(_ name: String, _ file: String, seconds: Double = 15, rate: String = "30", frames: Int? = nil,
                       audio: Bool = true, _ encode: [String]) -> VideoCase {
        let a = (seconds * 0.37 * 100).rounded() / 100, b = (seconds * 0.29 * 100).rounded() / 100
        let c = ((seconds - a - b) * 100).rounded() / 100
        let graph = "testsrc2=size=160x120:rate=\(rate):duration=\(a)[a];" +
            "mandelbrot=size=160x120:rate=\(rate),trim=duration=\(b),setpts=PTS-STARTPTS[b];" +
            "testsrc2=size=160x120:rate=\(rate):duration=\(c),hue=h=120[c];[a][b][c]concat=n=3[v]"
        var args: [String] = []
        if audio { args += ["-f", "lavfi", "-i", "sine=frequency=440:duration=\(seconds)"] }
        args += ["-filter_complex", graph, "-map", "[v]"]
        if audio { args += ["-map", "0:a", "-c:a", file.hasSuffix(".avi") ? "libmp3lame" : "aac"] }
        if let frames { args += ["-frames:v", "\(frames)"] }
        return VideoCase(name: name, file: file, arguments: args + encode + ["OUT"])
    }

    static func x264(bf: Int, keyint: Int, openGOP: Bool) -> [String] {
        ["-c:v", "libx264", "-bf", "\(bf)", "-x264-params", "keyint=\(keyint):open-gop=\(openGOP ? 1 : 0)"]
    }

    static func x265(bf: Int, keyint: Int, openGOP: Bool) -> [String] {
        ["-c:v", "libx265", "-preset", "ultrafast",
         "-x265-params", "log-level=error:keyint=\(keyint):bframes=\(bf):open-gop=\(openGOP ? 1 : 0)"]
    }

    /// FFmpeg's MPEG-4 Part 2 encoder: B-frames before an I-frame reference the previous GOP
    /// unless `closedGOP` (which needs scene-cut keyframes off).
    static func mpeg4(bf: Int, keyint: Int, closedGOP: Bool = false) -> [String] {
        ["-c:v", "mpeg4", "-q:v", "5", "-bf", "\(bf)", "-g", "\(keyint)"] + (closedGOP ? ["-flags", "+cgop", "-sc_threshold", "1000000000"] : [])
    }

    /// Xvid writes B-frames into AVI packed (DivX style): a packet holds a P-frame and the
    /// B-frame before it, followed by a 6-byte placeholder (flagged key after an I-frame).
    static func xvid(bf: Int, keyint: Int) -> [String] {
        ["-c:v", "libxvid", "-bf", "\(bf)", "-g", "\(keyint)"]
    }
}

/// The neighbours of two classes that once differed from the ffmpeg tool (issue #10):
///
/// * open GOPs (H.264 non-IDR I-frames, HEVC CRA) at low rates, where the last sample is the
///   last frame of a GOP that a seek lands in: 15 s at 0.1, 0.5 and 2.5 fps ends with the
///   last frame, and 25 s does at 0.1 and 0.5;
/// * streams whose packets have decode times only (AVI with B-frames, packed or not, MPEG-4
///   Part 2 and H.264), where the decoder decides each picture's timestamp: 434 frames at
///   30 fps is where one frame more at the end changes the sample count at 1 fps;
///
/// across containers (mp4, mkv, avi, ts, mov), B-frame counts 0, 2 and 3, GOP lengths from
/// 12 to 250 with scene cuts, open and closed GOPs, and H.264, HEVC, MPEG-4 Part 2 and MJPEG.
let conformanceMatrix: [VideoCase] = [
    // 750 frames, keyframes every 24: the last GOP has 6 frames, all still in the decoder when a
    // seek into that GOP reaches the end of the file.
    VideoCase(name: "mkv h264 open gop, 3 b-frames, keyint 24, 25 s (short last GOP)", file: "h264-og-b3-k24.mkv", arguments: [
        "-f", "lavfi", "-i", "sine=frequency=440:duration=25", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=30:duration=25",
        "-map", "1:v", "-map", "0:a", "-c:a", "aac"] + VideoCase.x264(bf: 3, keyint: 24, openGOP: true) + ["OUT"]),
    .scenes("mkv h264 open gop, 3 b-frames, keyint 50", "h264-og-b3-k50.mkv", VideoCase.x264(bf: 3, keyint: 50, openGOP: true)),
    .scenes("mkv h264 open gop, 2 b-frames, keyint 12", "h264-og-b2-k12.mkv", VideoCase.x264(bf: 2, keyint: 12, openGOP: true)),
    .scenes("mkv h264 open gop, 3 b-frames, keyint 250", "h264-og-b3-k250.mkv", VideoCase.x264(bf: 3, keyint: 250, openGOP: true)),
    .scenes("mkv h264 closed gop, 3 b-frames, keyint 50", "h264-cg-b3-k50.mkv", VideoCase.x264(bf: 3, keyint: 50, openGOP: false)),
    .scenes("mkv h264 no b-frames, keyint 30", "h264-b0-k30.mkv", VideoCase.x264(bf: 0, keyint: 30, openGOP: false)),
    .scenes("mp4 h264 open gop, 3 b-frames, keyint 50", "h264-og-b3-k50.mp4", VideoCase.x264(bf: 3, keyint: 50, openGOP: true)),
    .scenes("mp4 h264 closed gop, 2 b-frames, keyint 250", "h264-cg-b2-k250.mp4", VideoCase.x264(bf: 2, keyint: 250, openGOP: false)),
    .scenes("ts h264 open gop, 3 b-frames, keyint 30", "h264-og-b3-k30.ts", VideoCase.x264(bf: 3, keyint: 30, openGOP: true)),
    .scenes("mov h264 open gop, 2 b-frames, keyint 24", "h264-og-b2-k24.mov", VideoCase.x264(bf: 2, keyint: 24, openGOP: true)),
    .scenes("avi h264 3 b-frames, keyint 50 (decode times only)", "h264-b3-k50.avi", frames: 434, VideoCase.x264(bf: 3, keyint: 50, openGOP: false)),
    .scenes("avi h264 no b-frames, keyint 30", "h264-b0-k30.avi", VideoCase.x264(bf: 0, keyint: 30, openGOP: false)),
    .scenes("mkv hevc open gop (CRA), 3 b-frames, keyint 40", "hevc-og-b3-k40.mkv", VideoCase.x265(bf: 3, keyint: 40, openGOP: true)),
    .scenes("mp4 hevc closed gop, no b-frames, keyint 30", "hevc-b0-k30.mp4", VideoCase.x265(bf: 0, keyint: 30, openGOP: false)),
    .scenes("ts hevc open gop, 2 b-frames, keyint 25", "hevc-og-b2-k25.ts", rate: "25", VideoCase.x265(bf: 2, keyint: 25, openGOP: true)),
    .scenes("avi mpeg4 2 b-frames, open gop, keyint 24", "mpeg4-b2-k24.avi", frames: 434, VideoCase.mpeg4(bf: 2, keyint: 24)),
    .scenes("avi mpeg4 3 b-frames, open gop, keyint 12", "mpeg4-b3-k12.avi", VideoCase.mpeg4(bf: 3, keyint: 12)),
    .scenes("avi mpeg4 2 b-frames, closed gop, keyint 50", "mpeg4-b2-cg-k50.avi", VideoCase.mpeg4(bf: 2, keyint: 50, closedGOP: true)),
    .scenes("avi mpeg4 no b-frames, keyint 24", "mpeg4-b0-k24.avi", VideoCase.mpeg4(bf: 0, keyint: 24)),
    .scenes("avi xvid packed 2 b-frames, keyint 30", "xvid-b2-k30.avi", frames: 434, VideoCase.xvid(bf: 2, keyint: 30)),
    .scenes("avi xvid packed 3 b-frames, keyint 12", "xvid-b3-k12.avi", VideoCase.xvid(bf: 3, keyint: 12)),
    .scenes("mkv mpeg4 2 b-frames, keyint 24", "mpeg4-b2-k24.mkv", VideoCase.mpeg4(bf: 2, keyint: 24)),
    .scenes("mp4 mpeg4 3 b-frames, closed gop, keyint 30", "mpeg4-b3-cg-k30.mp4", VideoCase.mpeg4(bf: 3, keyint: 30, closedGOP: true)),
    .scenes("mov mjpeg", "mjpeg.mov", seconds: 12.5, ["-c:v", "mjpeg", "-q:v", "5"]),
    .scenes("mkv mjpeg, no audio", "mjpeg.mkv", seconds: 12.5, audio: false, ["-c:v", "mjpeg", "-q:v", "5"]),
]

@Suite("Conformance matrix: open GOPs, decode-time-only containers, B-frames, GOP lengths")
struct ConformanceMatrixTests {
    static let rates = ["0.1", "0.5", "1", "2.5"]

    @Test("same frames as ffmpeg -vf fps=R at 0.1, 0.5, 1 and 2.5 fps, per segment and whole", arguments: conformanceMatrix)
    func matchesFFmpeg(_ video: VideoCase) throws {
        let dir = try Fixtures.makeDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = try video.make(in: dir)
        for rate in Self.rates {
            try Fixtures.expectSameFramesAsFFmpeg(video.name, path, rate: rate, reusedReverse: rate == "1")
        }
    }
}
