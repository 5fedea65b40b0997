import Foundation
import FrameCore
import Testing
@testable import FrameMedia

/// Test videos generated with the ffmpeg command line into a per-test temporary directory,
/// and the ffmpeg tool's own answers (`-f framemd5`) to compare against.
enum Fixtures {
    /// A fresh temporary directory; parallel tests never share one.
    static func makeDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("frameflow-media-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    struct CommandFailed: Error, CustomStringConvertible {
        var description: String
    }

    /// Runs a command, returning stdout; throws with stderr on a non-zero exit.
    @discardableResult
    static func run(_ executable: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // Read both pipes concurrently with the process so neither fills up and blocks it.
        nonisolated(unsafe) var errData = Data()
        let errThread = Thread { errData = err.fileHandleForReading.readDataToEndOfFile() }
        errThread.start()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        while errThread.isExecuting || !errThread.isFinished { usleep(1000) }
        guard process.terminationStatus == 0 else {
            throw CommandFailed(description: "\(executable) \(arguments.joined(separator: " ")) failed: \(String(decoding: errData.suffix(2000), as: UTF8.self))")
        }
        return String(decoding: outData, as: UTF8.self)
    }

    /// `ffmpeg -y -hide_banner -loglevel error ARGS`.
    static func ffmpeg(_ arguments: [String]) throws {
        try run("/usr/bin/ffmpeg", ["-y", "-hide_banner", "-loglevel", "error", "-nostdin"] + arguments)
    }

    /// Generates a video from a lavfi source: `source` like `testsrc2=size=160x120:rate=25:duration=4`.
    static func video(_ dir: URL, _ name: String, source: String, encode: [String], extraInput: [String] = []) throws -> String {
        let path = dir.appendingPathComponent(name).path
        try ffmpeg(["-f", "lavfi", "-i", source] + extraInput + encode + [path])
        return path
    }

    /// The ffmpeg tool's answer: MD5 of every frame `-vf fps=R` outputs, in order.
    static func referenceDigests(_ path: String, rate: String, extraInput: [String] = []) throws -> [String] {
        let text = try run("/usr/bin/ffmpeg", ["-hide_banner", "-loglevel", "error", "-nostdin"] + extraInput +
                           ["-i", path, "-an", "-sn", "-dn", "-vf", "fps=\(rate)", "-f", "framemd5", "-"])
        return text.split(separator: "\n").filter { !$0.hasPrefix("#") }.compactMap { line in
            line.split(separator: ",").last.map { $0.trimmingCharacters(in: .whitespaces) }
        }
    }

    /// Our answer: probe, plan, then decode every segment with its own decoder (as separate
    /// nodes would), returning digests in sample order and the summed statistics.
    static func ourDigests(_ path: String, rate: Rational, segmentSeconds: Double, reuseDecoder: Bool = false, reversed: Bool = false,
                           source: (any ByteSource)? = nil) throws -> (digests: [SampleDigest], stats: SegmentStats, plan: SegmentPlan) {
        let info = try MediaProbe.probe(path: path)
        let plan = try SegmentPlanner.makePlan(info, rate: rate, segmentSeconds: segmentSeconds)
        var all: [SampleDigest] = []
        var total = SegmentStats()
        var shared: SegmentDecoder?
        var results: [[SampleDigest]] = Array(repeating: [], count: plan.segments.count)
        for spec in reversed ? plan.segments.reversed() : plan.segments {
            let decoder: SegmentDecoder
            if reuseDecoder, let shared { decoder = shared } else {
                decoder = try SegmentDecoder(source: source ?? FileByteSource(path: path), formatHint: path)
                shared = decoder
            }
            var got: [SampleDigest] = []
            let stats = try decoder.runDigests(spec) { got.append($0) }
            guard got.count == Int(spec.sampleCount) else {
                throw Fixtures.CommandFailed(description: "segment \(spec.index) emitted \(got.count) of \(spec.sampleCount)")
            }
            results[Int(spec.index)] = got
            total.decodedFrames += stats.decodedFrames
            total.emittedFrames += stats.emittedFrames
            total.bytesRead += stats.bytesRead
            total.seeks += stats.seeks
        }
        all = results.flatMap { $0 }
        return (all, total, plan)
    }

    /// Our digests when the video has no usable keyframe index: one segment decoded from the
    /// start, by a decoder that first decoded the end of the video (so it has to rewind).
    static func indexlessDigests(_ path: String, rate: Rational) throws -> [String] {
        var info = try MediaProbe.probe(path: path)
        let last = try SegmentPlanner.plan(info, rate: rate, segmentSeconds: 1).last!
        info.keyframes = []
        let plan = try SegmentPlanner.plan(info, rate: rate, segmentSeconds: 1)
        guard plan.count == 1 else { throw CommandFailed(description: "expected one segment without an index") }
        let decoder = try SegmentDecoder(path: path)
        _ = try decoder.runDigests(last) { _ in }
        var digests: [String] = []
        _ = try decoder.runDigests(plan[0]) { digests.append($0.md5) }
        return digests
    }

    /// The conformance check both suites apply to one video at one rate: our frames, decoded in
    /// one-second segments and as one whole-file segment, are the ffmpeg tool's (`-vf fps=R`), digest
    /// for digest. Optionally also by one decoder going backwards through the segments (every segment
    /// a seek back), and without a keyframe index.
    static func expectSameFramesAsFFmpeg(_ name: String, _ path: String, rate: String,
                                          reusedReverse: Bool = false, indexless: Bool = false) throws {
        let reference = try referenceDigests(path, rate: rate)
        let r = Rational(parsing: rate)!
        // One-second segments put a boundary at nearly every keyframe (the cluster's path);
        // one big segment is the whole file decoded with jumps across gaps.
        let segmented = try ourDigests(path, rate: r, segmentSeconds: 1)
        let whole = try ourDigests(path, rate: r, segmentSeconds: 1000)
        #expect(segmented.plan.totalSamples == UInt32(reference.count), "\(name) at \(rate): sample count")
        #expect(segmented.digests.map(\.md5) == reference, "\(name) at \(rate): segmented")
        #expect(whole.digests.map(\.md5) == reference, "\(name) at \(rate): whole file")
        #expect(segmented.digests.map(\.sampleIndex) == Array(0..<UInt32(reference.count)), "\(name) at \(rate): sample order")
        if reusedReverse {
            let reused = try ourDigests(path, rate: r, segmentSeconds: 1, reuseDecoder: true, reversed: true)
            #expect(reused.digests.map(\.md5) == reference, "\(name) at \(rate): reused decoder, reverse order")
        }
        if indexless {
            #expect(try indexlessDigests(path, rate: r) == reference, "\(name) at \(rate): without an index")
        }
    }
}
