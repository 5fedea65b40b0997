import Crypto
import FrameCore
import FrameStore
import Foundation
import Hummingbird
import Logging
import NIOPosix
import Synchronization

/// Resumable uploads (tus 1.0.0) kept on the coordinator's disk: creation, appending chunks
/// with a durable offset, the finish that turns the file into a job, expiry and termination.
///
/// The bytes live in `uploads/partial/<id>` (a folder start-up recovery leaves alone: it only
/// judges folders named after a job id). `tus_uploads.received` is the offset the server
/// reports, and it only ever names bytes that are fsynced: it advances after each chunk, every
/// ``APIConfiguration/tusCheckpointBytes`` within a long chunk, and when a client goes away
/// mid-chunk (what arrived is kept). Anything in the file past it was never acknowledged and
/// is cut off when the next chunk starts.
///
/// When the last byte is durable, the file gets a second name `uploads/<id>/input.<ext>` (a
/// hard link, no copy) and goes through the same ``VideoIngestor`` as `POST /videos`; only when
/// the job is committed is the partial name removed and the upload marked done. A crash
/// anywhere in between leaves the partial file and a complete `receiving` row, and the next
/// finish (the client's HEAD, or the sweeper) either finds the committed job or ingests again.
///
/// With a ``TusPieceStore`` (sources in an object store: coordinators that share no disk), every
/// durable stretch is also stored as a piece before the offset moves, and the row names the
/// process whose partial file is complete (`staged_by` = ``stagingID``). Any other coordinator
/// rebuilds its partial file from the pieces before it appends or finishes, so a client may send
/// each chunk to a different coordinator. Without one, a partial file shorter than the offset
/// is refused rather than extended with zeros.
struct TusUploads: Sendable {
    let configuration: APIConfiguration
    let store: TusUploadStore
    let jobs: JobStore
    let ingestor: any VideoIngestor
    let threadPool: NIOThreadPool
    let locks: TusLocks
    let logger: Logger
    var pieces: (any TusPieceStore)? = nil
    /// This process's name in `tus_uploads.staged_by` (unique per process: a restarted coordinator
    /// does not trust a copy it may not have finished writing).
    var stagingID: String = "api-\(UUID().uuidString.lowercased())"

    var partialDirectory: URL { configuration.uploadsDirectory.appendingPathComponent("partial", isDirectory: true) }

    func partialPath(_ id: UUID) -> String { partialDirectory.appendingPathComponent(id.uuidString.lowercased()).path }

    // MARK: Creation

    /// Validates a creation request (size, file name, extension, job options) and records the upload.
    func create(owner: UUID, length: Int64, metadataHeader: String?) async throws -> TusUploadRecord {
        guard length <= configuration.maxUploadBytes else {
            throw APIError(.contentTooLarge, .uploadTooLarge,
                           "Upload-Length \(length) is larger than the limit of \(configuration.maxUploadBytes) bytes")
        }
        let metadata = try Tus.metadata(metadataHeader)
        guard let name = (metadata["filename"] ?? metadata["name"]).map(UploadReceiver.basename), !name.isEmpty else {
            throw APIError.validation("Upload-Metadata needs the file's name: 'filename <base64 name>'")
        }
        let ext = try configuration.checkExtension(of: name)
        var options = FormOptions(defaults: JobOptions(rate: configuration.defaultRate, output: configuration.defaultOutput))
        for (key, value) in metadata where FormOptions.fieldNames.contains(key) {
            try options.set(key, value)
        }
        // The same per-user quota as POST /videos, checked against the committed jobs before any
        // byte is accepted (the declared length counts in full: it is what the job will store).
        if let refusal = configuration.quota.refusal(
            held: try await jobs.usage(userID: owner), adding: UserUsage(storedBytes: length, activeJobs: 1)) {
            throw refusal
        }
        let creation = try await store.create(
            id: UUID(), userID: owner, filename: name, ext: ext, length: length,
            optionsJSON: try StoredJobOptions(options.jobOptions).json(), metadata: metadataHeader ?? "",
            expiresAt: Date().addingTimeInterval(configuration.tusExpiry.seconds),
            maxUnfinished: configuration.maxUnfinishedUploads)
        switch creation {
        case .created(let record):
            logger.info("resumable upload created", metadata: [
                "upload": "\(record.id)", "user": "\(owner)", "length": "\(length)", "file": "\(name)",
            ])
            return record
        case .capReached(let open):
            throw APIError(.tooManyRequests, .tooManyUploads,
                           "you have \(open) unfinished uploads (the limit is \(configuration.maxUnfinishedUploads)): finish or delete one first")
        }
    }

    // MARK: Chunks

    /// Appends `body` at the upload's durable offset and moves `record` to the new one. Afterwards
    /// this process's partial file holds every acknowledged byte (``ensureStaged(_:)`` saw to it
    /// first), so `record` names this process as the holder and a finish right after rebuilds nothing.
    func append(_ record: inout TusUploadRecord, body: RequestBody, checksum: Tus.Checksum?) async throws {
        record.received = try await append(record, body: body, checksum: checksum)
        if pieces != nil { record.stagedBy = stagingID }
    }

    /// Appends `body` at the upload's durable offset; returns the new durable offset.
    ///
    /// With a checksum the chunk is all or nothing: it is made durable only if it arrived whole and
    /// matches (460 CHECKSUM_MISMATCH otherwise, and the offset stays). Without one, what arrived is
    /// kept even when the client goes away mid-chunk. The caller holds the upload's lock.
    private func append(_ record: TusUploadRecord, body: RequestBody, checksum: Tus.Checksum?) async throws -> Int64 {
        try await UploadFile.makeDirectory(partialDirectory.path, threadPool: threadPool)
        try await ensureStaged(record)
        let file = try await UploadFile.openForAppend(path: partialPath(record.id), at: record.received, threadPool: threadPool)
        var sha1 = Insecure.SHA1()
        var written = record.received
        var durable = record.received
        var failure: (any Error)?
        // A failed write or fsync leaves the file's tail unknown: nothing more is made durable then.
        var fileHealthy = true
        var complete = false
        do {
            for try await chunk in body {
                guard written + Int64(chunk.readableBytes) <= record.length else {
                    throw APIError(.contentTooLarge, .uploadTooLarge,
                                   "the chunk goes past the upload's length of \(record.length) bytes")
                }
                if checksum != nil { chunk.withUnsafeReadableBytes { sha1.update(bufferPointer: $0) } }
                do { try await file.write(chunk) } catch { fileHealthy = false; throw error }
                written += Int64(chunk.readableBytes)
                if checksum == nil, written - durable >= configuration.tusCheckpointBytes {
                    durable = try await commit(file, record, from: durable, healthy: &fileHealthy)
                }
            }
            complete = true
        } catch {
            failure = error
        }
        do {
            if let checksum {
                if complete {
                    if checksum.matches(Array(sha1.finalize())) {
                        durable = try await commit(file, record, from: durable, healthy: &fileHealthy)
                    } else {
                        failure = APIError(.init(code: 460, reasonPhrase: "Checksum Mismatch"), .checksumMismatch,
                                           "the chunk does not match its Upload-Checksum; it was discarded, resume from offset \(durable)")
                    }
                }
            } else if fileHealthy, written > durable {
                durable = try await commit(file, record, from: durable, healthy: &fileHealthy)
            }
        } catch {
            if failure == nil { failure = error }
        }
        await file.abandon()
        if let failure {
            if !complete, fileHealthy, !(failure is APIError) {
                // The client went away mid-chunk: not a server failure (the answer will not reach it anyway).
                logger.info("resumable upload chunk cut off", metadata: [
                    "upload": "\(record.id)", "durable": "\(durable)", "error": "\(failure)",
                ])
                throw APIError(.badRequest, .validationFailed,
                               "the chunk ended before its end (\(failure)); \(durable) bytes are kept: resume from there")
            }
            throw failure
        }
        return durable
    }

    /// Makes everything written durable and records the new offset (with a renewed expiry).
    private func commit(_ file: UploadFile, _ record: TusUploadRecord, from: Int64, healthy: inout Bool) async throws -> Int64 {
        let offset: Int64
        do { offset = try await file.checkpoint() } catch { healthy = false; throw error }
        guard offset != from else { return offset }
        let expires = Date().addingTimeInterval(configuration.tusExpiry.seconds)
        let advanced: Bool
        if let pieces {
            // The piece is durable in the store before the offset acknowledges its bytes. A store
            // that is away is the client's 503 (nothing more acknowledged), not a cut-off chunk.
            let key: String
            do {
                key = try await pieces.store(upload: record.id, file: URL(fileURLWithPath: partialPath(record.id)), bytes: from..<offset)
            } catch {
                throw APIError.from(error)
            }
            advanced = try await store.advance(id: record.id, from: from, to: offset, expiresAt: expires, stagedBy: stagingID, pieceKey: key)
        } else {
            advanced = try await store.advance(id: record.id, from: from, to: offset, expiresAt: expires)
        }
        guard advanced else {
            throw APIError(.gone, .uploadExpired, "the upload was terminated or expired while this chunk arrived")
        }
        return offset
    }

    // MARK: The local copy

    /// Makes sure this process's partial file holds every acknowledged byte of `record` before it
    /// is appended to or finished: rebuilt from the pieces when another coordinator (or an earlier
    /// run of this one) took the last chunk; refused when nothing can rebuild it.
    func ensureStaged(_ record: TusUploadRecord) async throws {
        guard record.received > 0 else { return }
        let local = try await UploadFile.size(partialPath(record.id), threadPool: threadPool) ?? 0
        if let pieces {
            if record.stagedBy == stagingID, local >= record.received { return }
            let recorded = try await store.pieces(id: record.id)
            if TusPieces.cover(recorded, upTo: record.received) {
                try await rebuild(record, from: recorded, pieces)
                return
            }
            // An upload begun before pieces were kept: its partial file is the only copy.
            if record.stagedBy == nil, local >= record.received { return }
        } else if local >= record.received {
            return
        }
        logger.error("resumable upload bytes missing: coordinators that share no disk need storage.s3.uploads: s3", metadata: [
            "upload": "\(record.id)", "offset": "\(record.received)", "local_bytes": "\(local)",
        ])
        throw APIError(.internalServerError, .ioError,
                       "this coordinator does not have the upload's \(record.received) acknowledged bytes (only \(local)); "
                       + "coordinators that share no disk need the object store for uploads (storage.s3.uploads: s3)")
    }

    /// Writes the pieces into a fresh partial file, fsyncs it and records this process as its holder.
    private func rebuild(_ record: TusUploadRecord, from recorded: [TusUploadPiece], _ pieces: any TusPieceStore) async throws {
        let started = ContinuousClock.now
        try await UploadFile.makeDirectory(partialDirectory.path, threadPool: threadPool)
        let file = try await UploadFile.openForAppend(path: partialPath(record.id), at: 0, threadPool: threadPool)
        do {
            for piece in recorded where piece.bytes.upperBound <= record.received {
                var got: Int64 = 0
                try await pieces.fetch(key: piece.key) { buffer in
                    got += Int64(buffer.readableBytes)
                    guard got <= Int64(piece.bytes.count) else { return }
                    try await file.write(buffer)
                }
                guard got == Int64(piece.bytes.count) else {
                    throw APIError(.internalServerError, .ioError,
                                   "the stored piece \(piece.key) holds \(got) bytes, not the \(piece.bytes.count) recorded")
                }
            }
            _ = try await file.checkpoint()
        } catch {
            await file.abandon()
            throw APIError.from(error)
        }
        await file.abandon()
        try await store.markStaged(id: record.id, received: record.received, by: stagingID)
        logger.info("resumable upload copy rebuilt from the object store", metadata: [
            "upload": "\(record.id)", "bytes": "\(record.received)", "pieces": "\(recorded.count)",
            "rebuild_ms": "\((ContinuousClock.now - started).milliseconds)",
        ])
    }

    /// Deletes the upload's pieces and then their rows; when the store is away the rows stay and
    /// the sweep tries again.
    func discardPieces(_ id: UUID) async {
        guard let pieces else { return }
        do {
            try await pieces.discard(upload: id)
            try await store.forgetPieces(id: id)
        } catch {
            logger.warning("could not delete a resumable upload's pieces; the upload sweep will retry", metadata: [
                "upload": "\(id)", "error": "\(error)",
            ])
        }
    }

    // MARK: Finish

    /// Turns a complete upload into a job (or finds the job an interrupted finish committed);
    /// returns the video id. A refused file (422 media codes) ends the upload as `refused` and
    /// deletes its bytes; a server-side failure (database down) leaves it complete and receiving,
    /// to be finished by the next attempt. The caller holds the upload's lock.
    func finish(_ record: TusUploadRecord) async throws -> UUID {
        precondition(record.isComplete)
        if let job = try await jobs.get(id: record.id) {
            guard job.userID == record.userID else {
                throw APIError(.internalServerError, .internalError, "upload \(record.id) collides with another user's job")
            }
            try await store.finish(id: record.id, state: .done)
            try? await UploadFile.remove(partialPath(record.id), threadPool: threadPool)
            await discardPieces(record.id)
            return job.id
        }
        try await ensureStaged(record)
        let clock = ContinuousClock()
        let started = clock.now
        let directory = configuration.uploadsDirectory.appendingPathComponent(record.id.uuidString.lowercased(), isDirectory: true)
        let target = directory.appendingPathComponent("input.\(record.ext)")
        try await UploadFile.makeDirectory(directory.path, threadPool: threadPool)
        try await UploadFile.hardLink(partialPath(record.id), target.path, threadPool: threadPool)
        try await UploadFile.syncDirectory(directory.path, threadPool: threadPool)
        try await UploadFile.syncDirectory(configuration.uploadsDirectory.path, threadPool: threadPool)
        let upload = StoredUpload(
            jobID: record.id, file: target, originalFilename: record.filename, fileExtension: record.ext,
            sizeBytes: record.length)
        do {
            let options = try StoredJobOptions.decode(record.optionsJSON).jobOptions
            _ = try await ingestor.ingest(upload, owner: record.userID, options: options)
        } catch {
            let apiError = APIError.from(error)
            try? FileManager.default.removeItem(at: directory)
            if apiError.status.code < 500 {
                try? await store.finish(id: record.id, state: .refused, errorCode: apiError.code, errorMessage: apiError.detail)
                try? await UploadFile.remove(partialPath(record.id), threadPool: threadPool)
                await discardPieces(record.id)
            }
            logger.info("resumable upload refused", metadata: [
                "upload": "\(record.id)", "file": "\(record.filename)", "code": "\(apiError.code.name)",
            ])
            throw apiError
        }
        // The job is committed: from here a failure only delays the bookkeeping (the next finish finds the job).
        try await store.finish(id: record.id, state: .done)
        try? await UploadFile.remove(partialPath(record.id), threadPool: threadPool)
        await discardPieces(record.id)
        logger.notice("upload accepted", metadata: [
            "job": "\(record.id)", "user": "\(record.userID)", "bytes": "\(record.length)", "via": "tus",
            "finish_ms": "\((clock.now - started).milliseconds)",
        ])
        return record.id
    }

    // MARK: Expiry and termination

    /// Ends an unfinished upload past its expiry and deletes its bytes; false when it was not due.
    @discardableResult
    func expire(_ id: UUID) async throws -> Bool {
        guard try await store.expire(id: id) else { return false }
        try await UploadFile.remove(partialPath(id), threadPool: threadPool)
        await discardPieces(id)
        logger.info("resumable upload expired", metadata: ["upload": "\(id)"])
        return true
    }

    /// Deletes an unfinished upload's bytes at its owner's request.
    func terminate(_ record: TusUploadRecord) async throws {
        if record.state == .receiving {
            guard try await store.finish(id: record.id, state: .terminated) else { return }
            try await UploadFile.remove(partialPath(record.id), threadPool: threadPool)
            await discardPieces(record.id)
        } else {
            try await store.terminateFinished(id: record.id)
        }
    }

    /// One pass of the expiry sweep: expires due uploads (finishing complete ones instead),
    /// removes partial files no receiving upload owns (left by a crash between a finish's commit
    /// and its clean-up), and deletes the pieces of ended uploads that a store outage left behind.
    /// Returns how many uploads it expired.
    @discardableResult
    func sweep() async throws -> Int {
        var expired = 0
        for id in try await store.dueForExpiry() {
            guard locks.tryLock(id) else { continue }
            defer { locks.unlock(id) }
            guard let record = try await store.get(id: id), record.state == .receiving else { continue }
            if record.isComplete {
                _ = try? await finish(record)
            } else if try await expire(id) {
                expired += 1
            }
        }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: partialDirectory.path)) ?? []
        for name in names {
            guard let id = UUID(uuidString: name), name == id.uuidString.lowercased(), locks.tryLock(id) else { continue }
            defer { locks.unlock(id) }
            let record = try await store.get(id: id)
            if record?.state != .receiving {
                try? await UploadFile.remove(partialPath(id), threadPool: threadPool)
            }
        }
        if pieces != nil {
            for id in try await store.endedWithPieces() { await discardPieces(id) }
        }
        return expired
    }
}

/// The rule for rebuilding a local copy from recorded pieces.
enum TusPieces {
    /// Whether `pieces` (in byte order) cover `0..<received` without a gap or an overlap.
    static func cover(_ pieces: [TusUploadPiece], upTo received: Int64) -> Bool {
        var next: Int64 = 0
        for piece in pieces where piece.bytes.upperBound <= received {
            guard piece.bytes.lowerBound == next else { return false }
            next = piece.bytes.upperBound
        }
        return next == received
    }
}

/// Which uploads a request is writing or finishing in this process: one at a time per upload
/// (a second PATCH gets 409 while the first runs; the offset's compare-and-set in the store
/// guards against writers in other processes).
final class TusLocks: Sendable {
    private let held = Mutex<Set<UUID>>([])

    func tryLock(_ id: UUID) -> Bool { held.withLock { $0.insert(id).inserted } }
    func unlock(_ id: UUID) { _ = held.withLock { $0.remove(id) } }
}
