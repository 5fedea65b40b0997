import Foundation
import FrameTestSupport
import Testing

/// `frameflow extract` as a user runs it: a ZIP on success, one clear line and
/// a non-zero status on bad input.
@Suite struct ExtractCommandTests {
    @Test func extractsAZipWithTheExpectedFrames() throws {
        let video = try Fixtures.video(seconds: 5, name: "cli.mp4")
        let out = Fixtures.directory.appendingPathComponent("cli-\(UUID().uuidString).zip")
        let r = try runCommand(Binaries.url("frameflow"), ["extract", video.path, "--fps", "1", "--output", out.path])
        #expect(r.status == 0, "\(r.output)")
        let names = try Fixtures.zipEntries(out).keys.sorted()
        #expect(names == ["frame_0001.png", "frame_0002.png", "frame_0003.png", "frame_0004.png", "frame_0005.png", "manifest.json"])
    }

    @Test func notAVideoFailsWithOneLineAndACode() throws {
        let junk = Fixtures.directory.appendingPathComponent("junk-\(UUID().uuidString).mp4")
        try Data("this is not a video".utf8).write(to: junk)
        let r = try runCommand(Binaries.url("frameflow"), [
            "extract", junk.path, "--fps", "1", "--output", junk.appendingPathExtension("zip").path,
        ])
        #expect(r.status != 0)
        let lines = r.output.split(separator: "\n")
        #expect(lines.count == 1, "\(r.output)")
        #expect(r.output.contains("NOT_MEDIA") || r.output.contains("CORRUPT_MEDIA"), "\(r.output)")
    }

    @Test func badRateIsRefused() throws {
        let video = try Fixtures.video(seconds: 2, name: "cli-rate.mp4")
        let r = try runCommand(Binaries.url("frameflow"), ["extract", video.path, "--fps", "0", "--output", "/tmp/x.zip"])
        #expect(r.status != 0)
        #expect(!r.output.isEmpty)
    }
}
