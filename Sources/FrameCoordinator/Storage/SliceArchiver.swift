import FrameArchive
import FrameCore
import FrameMedia
import FrameObjectStore
import FrameStore
import Foundation
import Logging
import NIOCore
import NIOPosix

/// One part of the archive's multipart upload, as ``AssemblyPlan`` decides it.
enum AssemblyPart: Sendable, Equatable {
    /// Bytes `range` of slice `slice` (an index into the plan's slices), copied by the store.
    case copy(slice: Int, range: Range<Int64>)
    /// The concatenation of `pieces` (fetched by the assembler), then the tail when `withTail`.
    case upload(pieces: [Piece], withTail: Bool)

    struct Piece: Sendable, Equatable {
        var slice: Int
        var range: Range<Int64>
    }
}

/// Which bytes of which slices make each part of the archive's multipart upload: a pure
/// function of the slices' lengths (docs/distributed-assembly.md, "S3's 5 MiB minimum part").
///
/// A slice of at least `minimum` bytes is copied by the store (UploadPartCopy), in pieces of at
/// most `maximum`; runs of smaller slices are concatenated by the assembler into parts of at
/// least `minimum`, topping a run up with the head of the next large slice when the rest of that
/// slice still makes a part. Every part but the last is therefore >= `minimum`; the last is the
/// leftover run followed by the tail. The assembler holds at most one part under construction,
/// which is less than 2 x `minimum` bytes.
enum AssemblyPlan {
    static func parts(lengths: [Int64], minimum: Int64 = Int64(S3MultipartWriter.minimumPartSize),
                      maximum: Int64 = Int64(S3MultipartWriter.maximumPartSize)) -> [AssemblyPart] {
        var parts: [AssemblyPart] = []
        var run: [AssemblyPart.Piece] = []
        var runBytes: Int64 = 0
        func flush() {
            parts.append(.upload(pieces: run, withTail: false))
            run = []
            runBytes = 0
        }
        for (index, length) in lengths.enumerated() where length > 0 {
            var start: Int64 = 0
            if runBytes > 0 {
                let need = minimum - runBytes
                guard length - need >= minimum else {
                    run.append(.init(slice: index, range: 0..<length))
                    runBytes += length
                    if runBytes >= minimum { flush() }
                    continue
                }
                run.append(.init(slice: index, range: 0..<need))
                flush()
                start = need
            } else if length < minimum {
                run.append(.init(slice: index, range: 0..<length))
                runBytes = length
                continue
            }
            // Copy [start, length) in equal pieces of at most `maximum` (each then >= minimum).
            let rest = length - start
            let count = (rest + maximum - 1) / maximum
            let piece = (rest + count - 1) / count
            var at = start
            while at < length {
                let end = min(at + piece, length)
                parts.append(.copy(slice: index, range: at..<end))
                at = end
            }
        }
        parts.append(.upload(pieces: run, withTail: true))
        return parts
    }
}

/// Segment slices in the object store and the archive assembled from them (`storage.kind: s3`,
/// docs/distributed-assembly.md).
///
/// ``writeSlice(_:total:format:samples:)`` lays a done segment's spooled frames out as stored ZIP
/// local entries (FrameArchive's ``ZipSliceBuilder``, CRC-32 by FrameMedia) and streams them into
/// `parts/<job>/<segment>-<epoch>.zipslice` (one part in memory at a time); the caller records the
/// returned manifest row with the segment's completion. ``assemble(job:slices:renew:)``
/// builds `archives/<job>.zip` with one multipart upload: large slices copied by the store,
/// small ones concatenated, the tail (manifest.json, central directory, end records) last; it
/// aborts the upload on any failure, and the object exists only once CompleteMultipartUpload has
/// returned.
public struct SliceArchiver: Sendable {
    public let client: S3Client
    let partSize: Int
    let threadPool: NIOThreadPool
    let logger: Logger

    public init(client: S3Client, partSize: Int = 16 << 20, threadPool: NIOThreadPool = .singleton, logger: Logger) {
        self.client = client
        self.partSize = partSize
        self.threadPool = threadPool
        self.logger = logger
    }

    /// `parts/<job>/<segment>-<epoch>.zipslice`: the epoch keeps a superseded lease's slice apart.
    public static func sliceKey(_ ref: LeaseRef) -> String {
        slicePrefix(ref.jobID) + "\(ref.segment)-\(ref.epoch).zipslice"
    }

    /// `parts/<job>/`: every slice of the job, recorded or not.
    public static func slicePrefix(_ job: UUID) -> String { "parts/\(job.uuidString.lowercased())/" }

    /// Writes the slice of segment `ref` from the frames spooled at `frameURL(sample)`, in sample
    /// order; returns its manifest row. `samples` maps each sample to its presentation time.
    func writeSlice(
        _ ref: LeaseRef, total: Int, format: ImageFormat, samples: [UInt32: Double], frameURL: (UInt32) -> URL
    ) async throws -> SegmentSliceRecord {
        let key = Self.sliceKey(ref)
        var builder = ZipSliceBuilder()
        var writer = S3MultipartWriter(client: client, key: key, partSize: partSize, contentType: "application/octet-stream")
        do {
            for sample in samples.keys.sorted() {
                let url = frameURL(sample)
                // Blocking file reads stay on the thread pool.
                let data = try await threadPool.runIfActive { try Data(contentsOf: url) }
                let name = FrameNaming.name(sampleIndex: Int(sample), total: total, format: format)
                let header = try data.withUnsafeBytes { raw in
                    try builder.header(name: name, data: raw, seconds: samples[sample]!, checksum: { CRC32.checksum($0) })
                }
                try await writer.write(ByteBuffer(bytes: header))
                try await writer.write(ByteBuffer(bytes: data))
            }
            try await writer.finish()
        } catch {
            await writer.abort()
            throw error
        }
        let entries = try PostgresJSON(builder.entries).postgresText
        return SegmentSliceRecord(segment: ref.segment, epoch: ref.epoch, key: key, length: Int64(builder.length), entriesJSON: entries)
    }

    /// The failure of an assembly whose claim was taken over meanwhile (it stopped and aborted its upload).
    struct ClaimLost: Error {}

    /// Builds `archives/<job>.zip` from `slices` (one per segment, in segment order) and the tail.
    ///
    /// `renew` is called with the upload id once the upload exists and after every part; it
    /// returns false when the assembly claim is no longer ours (then the upload is aborted and
    /// ``ClaimLost`` thrown). Returns the archive's size.
    func assemble(
        job record: JobRecord, slices: [SegmentSliceRecord],
        renew: @Sendable (_ uploadID: String) async throws -> Bool
    ) async throws -> Int64 {
        let started = ContinuousClock.now
        let job = record.id
        guard slices.count == Int(record.segmentCount), slices.map(\.segment) == (0..<UInt32(slices.count)).map({ $0 }) else {
            throw FrameFlowError(.frameCountMismatch, "\(slices.count) slices recorded for \(record.segmentCount) segments")
        }
        var entries: [ZipEntry] = []
        var base: UInt64 = 0
        let decoder = JSONDecoder()
        for slice in slices {
            let own = try decoder.decode([ZipEntry].self, from: Data(slice.entriesJSON.utf8))
            entries += own.map { $0.shifted(by: base) }
            base += UInt64(slice.length)
        }
        guard entries.count == Int(record.frameCount) else {
            throw FrameFlowError(.frameCountMismatch, "the slices hold \(entries.count) frames; the job has \(record.frameCount)")
        }
        let manifest = JobAssembler.manifest(job: record, frames: entries.map { .init(name: $0.name, seconds: $0.seconds) })
        let tail = try ZipTail.build(entries: entries, manifest: manifest, offset: base, checksum: { CRC32.checksum($0) })
        let plan = AssemblyPlan.parts(lengths: slices.map(\.length))
        guard plan.count <= S3MultipartWriter.maximumParts else {
            throw ArchiveError(.archiveFailed, "the archive would need \(plan.count) parts, over S3's \(S3MultipartWriter.maximumParts)")
        }
        let key = S3ArchiveStore.key(job)
        let uploadID = try await client.createMultipartUpload(key, contentType: "application/zip")
        var completed: [S3CompletedPart] = []
        var copied: Int64 = 0
        var moved: Int64 = 0
        do {
            guard try await renew(uploadID) else { throw ClaimLost() }
            for (i, part) in plan.enumerated() {
                let number = i + 1
                let etag: String
                switch part {
                case .copy(let index, let range):
                    let slice = slices[index]
                    let whole = range.lowerBound == 0 && range.upperBound == slice.length
                    etag = try await client.uploadPartCopy(
                        key, uploadID: uploadID, partNumber: number, source: slice.key,
                        range: whole ? nil : range.lowerBound...(range.upperBound - 1))
                    copied += Int64(range.count)
                case .upload(let pieces, let withTail):
                    var body = ByteBuffer()
                    for piece in pieces {
                        var bytes = try await client.getObject(
                            slices[piece.slice].key, range: piece.range.lowerBound...(piece.range.upperBound - 1),
                            limit: piece.range.count)
                        guard bytes.readableBytes == piece.range.count else {
                            throw S3Error.invalidResponse("slice \(slices[piece.slice].key): \(bytes.readableBytes) bytes for a range of \(piece.range.count)")
                        }
                        body.writeBuffer(&bytes)
                    }
                    moved += Int64(body.readableBytes)
                    if withTail { body.writeBytes(tail) }
                    etag = try await client.uploadPart(key, uploadID: uploadID, partNumber: number, body: body)
                }
                completed.append(S3CompletedPart(partNumber: number, etag: etag))
                guard try await renew(uploadID) else { throw ClaimLost() }
            }
            try await client.completeMultipartUpload(key, uploadID: uploadID, parts: completed)
        } catch {
            // Best effort: the next claimer aborts it too (the claim records the upload id).
            do { try await client.abortMultipartUpload(key, uploadID: uploadID) } catch {
                logger.warning("cannot abort the archive's multipart upload", metadata: [
                    "job": "\(job.uuidString.lowercased())", "error": "\(error)",
                ])
            }
            throw error
        }
        let size = Int64(base) + Int64(tail.count)
        logger.info("archive assembled from slices", metadata: [
            "job": "\(job.uuidString.lowercased())", "slices": "\(slices.count)", "parts": "\(plan.count)",
            "bytes": "\(size)", "copied_by_store": "\(copied)", "through_coordinator": "\(moved + Int64(tail.count))",
            "assembly_ms": "\((ContinuousClock.now - started).milliseconds)",
        ])
        return size
    }

    /// Removes slice objects (after the job is COMPLETED, or a superseded epoch's); best effort.
    func delete(keys: [String]) async {
        for key in keys {
            do { try await client.deleteObject(key) } catch {
                logger.warning("cannot delete a slice", metadata: ["key": "\(key)", "error": "\(error)"])
            }
        }
    }

    /// Removes every slice object of `job` once it is COMPLETED: the recorded ones, and any that
    /// no row names (a coordinator killed between a slice's upload and its record, a superseded
    /// epoch's whose delete failed), which would otherwise stay until retention; best effort.
    func deleteSlices(job: UUID) async {
        do { try await client.deleteAll(prefix: Self.slicePrefix(job)) } catch {
            logger.warning("cannot delete the job's slices; retention deletes them", metadata: [
                "job": "\(job.uuidString.lowercased())", "error": "\(error)",
            ])
        }
    }

    /// Aborts an upload a previous claimer left behind; best effort (it may be gone already).
    func abandon(job: UUID, uploadID: String) async {
        do { try await client.abortMultipartUpload(S3ArchiveStore.key(job), uploadID: uploadID) } catch {
            logger.warning("cannot abort an abandoned assembly upload", metadata: [
                "job": "\(job.uuidString.lowercased())", "error": "\(error)",
            ])
        }
    }
}
