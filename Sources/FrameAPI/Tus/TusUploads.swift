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
struct TusUploads: Sendable {
    let configuration: APIConfiguration
    let store: TusUploadStore
    let jobs: JobStore
    let ingestor: any VideoIngestor
    let threadPool: NIOThreadPool
    let locks: TusLocks
    let logger: Logger

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

    /// Appends `body` at the upload's durable offset; returns the new durable offset.
    ///
    /// With a checksum the chunk is all or nothing: it is made durable only if it arrived whole and
    /// matches (460 CHECKSUM_MISMATCH otherwise, and the offset stays). Without one, what arrived is
    /// kept even when the client goes away mid-chunk. The caller holds the upload's lock.
    func append(_ record: TusUploadRecord, body: RequestBody, checksum: Tus.Checksum?) async throws -> Int64 {
        try await UploadFile.makeDirectory(partialDirectory.path, threadPool: threadPool)
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
        guard try await store.advance(id: record.id, from: from, to: offset, expiresAt: expires) else {
            throw APIError(.gone, .uploadExpired, "the upload was terminated or expired while this chunk arrived")
        }
        return offset
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
            return job.id
        }
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
            }
            logger.info("resumable upload refused", metadata: [
                "upload": "\(record.id)", "file": "\(record.filename)", "code": "\(apiError.code.name)",
            ])
            throw apiError
        }
        // The job is committed: from here a failure only delays the bookkeeping (the next finish finds the job).
        try await store.finish(id: record.id, state: .done)
        try? await UploadFile.remove(partialPath(record.id), threadPool: threadPool)
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
        logger.info("resumable upload expired", metadata: ["upload": "\(id)"])
        return true
    }

    /// Deletes an unfinished upload's bytes at its owner's request.
    func terminate(_ record: TusUploadRecord) async throws {
        if record.state == .receiving {
            guard try await store.finish(id: record.id, state: .terminated) else { return }
            try await UploadFile.remove(partialPath(record.id), threadPool: threadPool)
        } else {
            try await store.terminateFinished(id: record.id)
        }
    }

    /// One pass of the expiry sweep: expires due uploads (finishing complete ones instead), and
    /// removes partial files no receiving upload owns (left by a crash between a finish's commit
    /// and its clean-up). Returns how many uploads it expired.
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
        return expired
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
