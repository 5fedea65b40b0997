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
}
