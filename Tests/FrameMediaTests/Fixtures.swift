import Foundation
import FrameCore
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
    static func ourDigests(_ path: String, rate: Rational, segmentSeconds: Double, reuseDecoder: Bool = false,
                           source: (any ByteSource)? = nil) throws -> (digests: [SampleDigest], stats: SegmentStats, plan: SegmentPlan) {
        let info = try MediaProbe.probe(path: path)
        let plan = try SegmentPlanner.makePlan(info, rate: rate, segmentSeconds: segmentSeconds)
        var all: [SampleDigest] = []
        var total = SegmentStats()
        var shared: SegmentDecoder?
        for spec in plan.segments {
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
            all += got
            total.decodedFrames += stats.decodedFrames
            total.emittedFrames += stats.emittedFrames
            total.bytesRead += stats.bytesRead
            total.seeks += stats.seeks
        }
        return (all, total, plan)
    }
}
