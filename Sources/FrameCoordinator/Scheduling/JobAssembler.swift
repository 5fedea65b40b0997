import FrameArchive
import FrameCore
import FrameMedia
import FrameStore
import Foundation

/// Builds a finished job's ZIP from its spooled frames, in sample order, with
/// the same names and manifest as `frameflow extract` so both produce the
/// same archive for the same input and options.
struct JobAssembler: Sendable {
    let layout: StorageLayout

    /// The archive's `manifest.json` for `job`'s `frames` (in sample order): the same document
    /// whichever way the archive is built (libzip here, slices with `storage.kind: s3`).
    static func manifest(job: JobRecord, frames: [ArchiveManifest.Frame]) -> ArchiveManifest {
        let info = job.probeJSON.flatMap { try? JSONDecoder().decode(MediaInfo.self, from: Data($0.utf8)) }
        let display = info?.displaySize ?? (width: 0, height: 0)
        return ArchiveManifest(
            source: job.originalFilename, durationSeconds: info?.durationSeconds ?? job.durationSeconds ?? 0,
            codec: info?.codec ?? "", width: display.width, height: display.height, rate: job.fps,
            format: job.output.format, frames: frames)
    }

    /// Writes `results/<job>.zip` (atomically) and removes the spool.
    func assemble(job: JobRecord, segments: [SegmentRecord]) throws -> URL {
        var seconds: [UInt32: Double] = [:]
        for segment in segments {
            let url = layout.spoolTimestamps(job.id, segment: segment.index)
            let data = try Data(contentsOf: url)
            for (sample, time) in try JSONDecoder().decode([UInt32: Double].self, from: data) { seconds[sample] = time }
        }
        let total = Int(job.frameCount)
        let destination = layout.result(job.id)
        try FileManager.default.createDirectory(at: layout.results, withIntermediateDirectories: true)
        let writer = try ArchiveWriter(destination: destination)
        var frames: [ArchiveManifest.Frame] = []
        frames.reserveCapacity(total)
        do {
            for sample in 0..<total {
                guard let time = seconds[UInt32(sample)] else {
                    throw FrameFlowError(.frameCountMismatch, "sample \(sample) of \(total) is missing from the spool")
                }
                let name = FrameNaming.name(sampleIndex: sample, total: total, format: job.output.format)
                try writer.add(name: name, fileURL: layout.spoolFrame(job.id, sample: UInt32(sample), format: job.output.format))
                frames.append(.init(name: name, seconds: time))
            }
            try writer.finish(manifest: Self.manifest(job: job, frames: frames))
        } catch {
            writer.discard()
            throw error
        }
        try? FileManager.default.removeItem(at: layout.spoolDirectory(job.id))
        return destination
    }
}
