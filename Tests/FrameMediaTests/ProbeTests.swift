import Foundation
import Testing
import FrameCore
@testable import FrameMedia

@Suite("Probe")
struct ProbeTests {
    @Test("finds a video stream behind an audio stream, with timing from the container")
    func videoNotStreamZero() throws {
        let dir = try Fixtures.makeDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = try conformanceCases.first { $0.file == "av.mp4" }!.make(in: dir)
        let info = try MediaProbe.probe(path: path)
        #expect(info.streamIndex == 1)
        #expect(info.codec == "h264")
        #expect(info.width == 160 && info.height == 120)
        #expect(info.frameRate == Rational(25, 1))
        #expect(info.isVariableFrameRate == false)
        #expect(info.frameCount == 125)
        #expect(info.keyframes.count == 5)
        #expect(info.containerIndexKeyframes == 5)
        // The audio starts at 0, so the container starts at 0 and the video 0.7 s later.
        #expect(info.startTimeMicros == 0)
        #expect(abs(Double(info.firstPTS) * info.timeBase.doubleValue - 0.7) < 0.05)
        #expect(abs(info.durationSeconds - 6) < 0.1)
    }

    @Test("builds the keyframe index by scanning when the container index is lazy (MKV cues)")
    func mkvScanIndex() throws {
        let dir = try Fixtures.makeDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = try VideoCase.lavfi("mkv", "k.mkv", seconds: 6, ["-c:v", "libx264", "-g", "15", "-keyint_min", "15", "-sc_threshold", "0"]).make(in: dir)
        let info = try MediaProbe.probe(path: path)
        #expect(info.container.contains("matroska"))
        #expect(info.keyframes.count == 12)
        #expect(info.containerIndexKeyframes < info.keyframes.count)
        #expect(info.keyframes.map(\.pts) == info.keyframes.map(\.pts).sorted())
        #expect(info.keyframes.allSatisfy { $0.pos > 0 })
    }

    @Test("flags variable frame rate")
    func variableFrameRate() throws {
        let dir = try Fixtures.makeDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = try conformanceCases.first { $0.file == "vfr.mp4" }!.make(in: dir)
        #expect(try MediaProbe.probe(path: path).isVariableFrameRate)
    }

    @Test("reads the display rotation and the non-zero start time")
    func rotationAndStart() throws {
        let dir = try Fixtures.makeDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let plain = try VideoCase.lavfi("plain", "plain.mp4", seconds: 2, ["-c:v", "libx264"]).make(in: dir)
        for degrees in [90, 180, 270] {
            let rotated = dir.appendingPathComponent("rot\(degrees).mp4").path
            try Fixtures.ffmpeg(["-i", plain, "-c", "copy", "-metadata:s:v", "rotate=\(degrees)", rotated])
            let info = try MediaProbe.probe(path: rotated)
            // FFmpeg 5.1 stores `rotate=N` as N degrees counter-clockwise; players turn it back.
            #expect(info.rotation == (360 - degrees) % 360)
            #expect(info.displaySize == (degrees == 180 ? (160, 120) : (120, 160)))
        }
        let offset = try conformanceCases.first { $0.file == "offset.mkv" }!.make(in: dir)
        let info = try MediaProbe.probe(path: offset)
        #expect(info.startTimeMicros == 3_370_000)
        #expect(try MediaProbe.probe(path: plain).rotation == 0)
    }

    /// The decoder's view of a file: key pictures' best-effort timestamps and the count, from ffprobe.
    static func decodedFrames(_ path: String) throws -> (keys: [Int64], count: Int, lastHasTimestamp: Bool) {
        let csv = try Fixtures.run("/usr/bin/ffprobe", ["-v", "error", "-select_streams", "v:0", "-show_entries",
                                                        "frame=key_frame,best_effort_timestamp", "-of", "csv=p=0", path])
        let rows = csv.split(separator: "\n").map { $0.split(separator: ",").map(String.init) }.filter { $0.count >= 2 }
        let keys = rows.filter { $0[0] == "1" }.compactMap { Int64($0[1]) }
        return (keys, rows.count, rows.last.map { Int64($0[1]) != nil } ?? false)
    }

    @Test("AVI with B-frames: the index holds the key pictures' decoder timestamps, not the key packets' decode times", arguments: [
        ["-c:v", "mpeg4", "-q:v", "5", "-bf", "2", "-g", "24"],  // I-frame shows behind two B-frames of the previous GOP
        ["-c:v", "libxvid", "-bf", "2", "-g", "30"],              // packed: placeholder packets flagged key
        ["-c:v", "libx264", "-bf", "3", "-g", "50"],              // reorder depth 2
    ])
    func decoderTimedIndex(_ encode: [String]) throws {
        let dir = try Fixtures.makeDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = try VideoCase.lavfi("avi", "b.avi", seconds: 5, encode).make(in: dir)
        let info = try MediaProbe.probe(path: path)
        let decoded = try Self.decodedFrames(path)
        // The last key picture may leave the decoder unstamped; every other one is compared.
        #expect(Array(info.keyframes.map(\.pts).prefix(decoded.keys.count)) == decoded.keys)
        #expect(info.keyframes.count >= decoded.keys.count && info.keyframes.count <= decoded.keys.count + 1)
        #expect(info.frameCount == decoded.count)
        // 150 frames at 30 fps; the decoder's first picture is stamped `delay` packets in and the
        // last ones drain out unstamped: the tool numbers them on from the end of the last packet.
        let packets = try Fixtures.run("/usr/bin/ffprobe", ["-v", "error", "-select_streams", "v:0", "-show_entries",
                                                            "packet=dts", "-of", "csv=p=0", path])
            .split(separator: "\n").compactMap { Int64($0) }
        #expect(decoded.lastHasTimestamp == false)
        let delay = Int(info.lastPTS - packets.last!)
        #expect(delay >= 1 && delay <= 2)
        #expect(info.firstPTS == packets[delay])
        #expect(info.lastDuration == 1)
    }

    @Test("MPEG-TS: the origin is the video's start when the audio starts earlier (the tool corrects it to the streams it reads)")
    func transportStreamStart() throws {
        let dir = try Fixtures.makeDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = try VideoCase(name: "ts", file: "a.ts", arguments: [
            "-f", "lavfi", "-i", "sine=frequency=440:duration=3", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:duration=3",
            "-map", "1:v", "-map", "0:a", "-c:a", "aac", "-c:v", "libx264", "OUT"]).make(in: dir)
        let info = try MediaProbe.probe(path: path)
        func start(_ entries: [String]) throws -> Double? {
            try Fixtures.run("/usr/bin/ffprobe", ["-v", "error"] + entries + ["-of", "csv=p=0", path])
                .split(separator: "\n").compactMap { Double($0) }.first
        }
        let video = try #require(try start(["-select_streams", "v:0", "-show_entries", "stream=start_time"]))
        let container = try #require(try start(["-show_entries", "format=start_time"]))
        // AAC priming puts the audio, and so the container, first.
        #expect(container < video)
        #expect(info.startTimeMicros == Int64((video * 1e6).rounded()))
        // The first frame is the tool's time 0 (its showinfo says pts 0).
        #expect(info.firstPTS == SampleClock.rescale(info.startTimeMicros, Int64(info.timeBase.den), 1_000_000 * Int64(info.timeBase.num)))
    }
}
