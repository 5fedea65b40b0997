import Foundation
import Testing
import FrameCore
import FrameExtract
import FrameTestSupport

@Suite("In-process extraction")
struct FrameExtractorTests {
    static func tempDir() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("frameflow-extract-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    static func makeVideo(_ dir: URL) throws -> String {
        let path = dir.appendingPathComponent("in.mp4").path
        _ = try Fixtures.run("/usr/bin/ffmpeg", ["-y", "-nostdin", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=30", "-t", "8",
                                       "-c:v", "libx264", "-bf", "3", "-g", "30", path])
        return path
    }

    /// The entries of a ZIP in order: name and bytes.
    static func entries(_ zip: URL) throws -> [(String, Data)] {
        try Fixtures.zipNames(zip).map { ($0, try Fixtures.run("/usr/bin/unzip", ["-p", zip.path, $0])) }
    }

    @Test("the ZIP holds the ffmpeg tool's JPEGs in order, named frame_0001.jpg..., with a manifest")
    func matchesFFmpegJPEGs() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = try Self.makeVideo(dir)
        let out = dir.appendingPathComponent("frames.zip")
        let summary = try FrameExtractor.run(ExtractRequest(
            input: input, rate: Rational(5, 2), options: OutputOptions(format: .jpeg, quality: 3), jobs: 2,
            segmentSeconds: 1, output: out))
        _ = try Fixtures.run("/usr/bin/ffmpeg", ["-nostdin", "-i", input, "-vf", "fps=2.5", "-q:v", "3",
                                            dir.appendingPathComponent("ref_%04d.jpg").path])
        let entries = try Self.entries(out)
        #expect(summary.frames == 20)
        #expect(summary.segments > 4)
        #expect(entries.count == 21)
        for i in 0..<20 {
            let name = String(format: "frame_%04d.jpg", i + 1)
            #expect(entries[i].0 == name)
            #expect(entries[i].1 == (try Data(contentsOf: dir.appendingPathComponent(String(format: "ref_%04d.jpg", i + 1)))), "\(name)")
        }
        #expect(entries[20].0 == "manifest.json")
        let manifest = try JSONSerialization.jsonObject(with: entries[20].1) as! [String: Any]
        #expect(manifest["source"] as? String == "in.mp4")
        #expect(manifest["rate"] as? String == "5/2")
        #expect(manifest["width"] as? Int == 160 && manifest["height"] as? Int == 120)
        let seconds = (manifest["frames"] as! [[String: Any]]).map { $0["seconds"] as! Double }
        #expect(seconds.count == 20 && seconds == seconds.sorted())
        // Only the ZIP is left behind: no spool directory, no temporary archive.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix(".") }.isEmpty)
    }

    @Test("the summary's profile accounts for every stage: open/probe, seek, decode, convert, encode, spool, archive")
    func profile() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = try Self.makeVideo(dir)
        // 1 frame per 3 s with 1 s GOPs: segments seek past whole GOPs.
        let summary = try FrameExtractor.run(ExtractRequest(
            input: input, rate: Rational(1, 3), options: OutputOptions(format: .png), jobs: 2, segmentSeconds: 1,
            output: dir.appendingPathComponent("frames.zip")))
        let p = summary.profile, w = p.workers
        #expect(summary.frames == 3)
        #expect(p.openProbe > 0 && p.archive > 0 && p.workersWall > 0)
        #expect(w.decodeSeconds > 0 && w.convertSeconds > 0 && w.encodeSeconds > 0 && w.deliverSeconds > 0)
        #expect(w.seeks > 0 && w.seekSeconds > 0)
        #expect(w.emittedFrames == 3 && w.decodedFrames == summary.decodedFrames)
        // Stages are parts of their wall times: the workers' sum is bounded by threads x wall.
        #expect(w.seekSeconds + w.decodeSeconds + w.convertSeconds + w.encodeSeconds + w.deliverSeconds <= 2 * p.workersWall + 0.01)
        #expect(p.openProbe + p.plan + p.workersWall + p.archive <= p.total + 0.001)
        // Each worker's open and busy time: the spread of busy times is the tail imbalance.
        #expect(p.workerBusy.count == 2 && p.workerBusy == p.workerBusy.sorted())
        #expect(p.workerBusy.allSatisfy { $0 > 0 && $0 <= p.workersWall + 0.001 })
        #expect(p.workerOpen > 0 && p.workerOpen <= p.workerBusy.reduce(0, +))
    }

    @Test("the automatic segment length gives each worker several segments, 2 to 10 s long")
    func automaticSegments() throws {
        #expect(ExtractRequest.automaticSegmentSeconds(videoSeconds: 60, jobs: 2) == 3.75)
        #expect(ExtractRequest.automaticSegmentSeconds(videoSeconds: 3600, jobs: 2) == 10)
        #expect(ExtractRequest.automaticSegmentSeconds(videoSeconds: 5, jobs: 4) == 2)
        #expect(ExtractRequest.automaticSegmentSeconds(videoSeconds: .nan, jobs: 2) == 10)
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = try Self.makeVideo(dir)
        let fixed = try FrameExtractor.run(ExtractRequest(input: input, rate: Rational(1, 1), jobs: 2, segmentSeconds: 10,
                                                          output: dir.appendingPathComponent("fixed.zip")))
        let automatic = try FrameExtractor.run(ExtractRequest(input: input, rate: Rational(1, 1), jobs: 2,
                                                              output: dir.appendingPathComponent("auto.zip")))
        // Ten-second segments leave one of two workers without work; the automatic ones give both some.
        #expect(fixed.segments == 1 && automatic.segments >= 2, "\(fixed.segments) vs \(automatic.segments) segments")
        #expect(try Self.entries(dir.appendingPathComponent("auto.zip")).map(\.1) == Self.entries(dir.appendingPathComponent("fixed.zip")).map(\.1))
    }

    @Test("the archive does not depend on the number of workers or the segment length")
    func deterministic() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = try Self.makeVideo(dir)
        var results: [[(String, Data)]] = []
        for (jobs, seconds) in [(1, 1000.0), (3, 1.0), (2, 3.0), (2, nil)] as [(Int, Double?)] {
            let out = dir.appendingPathComponent("o\(jobs).zip")
            _ = try FrameExtractor.run(ExtractRequest(input: input, rate: Rational(1, 1), jobs: jobs, segmentSeconds: seconds, output: out))
            results.append(try Self.entries(out))
        }
        #expect(results[0].count == 9)
        for r in results.dropFirst() {
            #expect(r.map(\.0) == results[0].map(\.0))
            #expect(r.map(\.1) == results[0].map(\.1))
        }
    }

    @Test("bad input fails with its code and leaves nothing behind")
    func failures() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let junk = dir.appendingPathComponent("junk.mp4")
        try Data(String(repeating: "not a video ", count: 1000).utf8).write(to: junk)
        let out = dir.appendingPathComponent("x.zip")
        #expect { _ = try FrameExtractor.run(ExtractRequest(input: junk.path, rate: Rational(1, 1), output: out)) } throws: {
            ($0 as? FrameFlowError)?.code == .notMedia
        }
        let input = try Self.makeVideo(dir)
        #expect { _ = try FrameExtractor.run(ExtractRequest(input: input, rate: Rational(1, 1), options: OutputOptions(quality: 40), output: out)) } throws: {
            ($0 as? FrameFlowError)?.code == .invalidOptions
        }
        #expect { _ = try FrameExtractor.run(ExtractRequest(input: dir.appendingPathComponent("missing.mp4").path, rate: Rational(1, 1), output: out)) } throws: {
            ($0 as? FrameFlowError)?.code == .ioError
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted() == ["in.mp4", "junk.mp4"])
    }
}
