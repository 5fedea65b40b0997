import FrameCore
import Foundation
import Hummingbird
import Logging
import NIOPosix

/// Streams a `multipart/form-data` request body to disk, part by part, as it
/// arrives: each `file` part goes to `uploads/<new job id>/input.<ext>`,
/// option fields are read into ``FormOptions``.
///
/// The body is never collected: each chunk from the socket is fed to
/// ``MultipartStreamParser`` and the file bytes it yields go to the
/// ``UploadFile`` (two 1 MiB staging buffers, written back as they fill) before
/// more is read, so memory stays at about 2 MiB per request however large the
/// upload (and Hummingbird's back-pressure slows the client to the disk's
/// pace). Limits act as soon as they are crossed: a file's extension is
/// checked from its part header before a byte is written (415), its size on
/// every chunk (413). On any failure every file this request wrote is
/// removed, so an error answer never leaves orphans behind.
struct UploadReceiver {
    let configuration: APIConfiguration
    let threadPool: NIOThreadPool
    let logger: Logger

    /// The outcome of a fully received request: durable files and the options that apply to all of them.
    struct Received {
        var uploads: [StoredUpload]
        var options: JobOptions
        /// Time spent in fsync (files and directories), part of the time to receive: it tells a slow
        /// disk from a slow client in the upload log line.
        var syncTime: Duration
    }

    /// The part being received.
    private enum Part {
        case none
        case file(UploadFile, StoredUpload)
        case field(name: String, value: ByteBuffer)
        case ignored
    }

    /// Receives the whole request; throws ``APIError`` (413, 415, 422, 429, 507, ...) after cleaning up.
    ///
    /// `reservation` is the caller's share of the user's quota; it grows as files arrive and the
    /// caller releases it once the jobs are committed.
    func receive(_ request: Request, query: [String: String], reservation: inout UploadReservation) async throws -> Received {
        guard let boundary = Self.boundary(request.headers[.contentType]) else {
            throw APIError.validation("the upload must be multipart/form-data with a boundary, with the video in a 'file' part")
        }
        // Refused before the body is read (and before a `100 Continue`), when the length says so.
        if let length = request.headers[.contentLength].flatMap(Int64.init), length > configuration.maxRequestBytes {
            throw requestTooLarge
        }
        try reservation.precheck()
        var options = FormOptions(defaults: JobOptions(rate: configuration.defaultRate, output: configuration.defaultOutput))
        for (name, value) in query where FormOptions.fieldNames.contains(name) {
            try options.set(name, value)
        }

        var parser = MultipartStreamParser(boundary: boundary)
        var part = Part.none
        var done: [StoredUpload] = []
        var syncTime = Duration.zero
        var requestBytes: Int64 = 0
        do {
            for try await chunk in request.body {
                // The whole body counts, files and fields and framing: several files (or a stream of
                // ignored parts) together cannot pass what one may not.
                requestBytes += Int64(chunk.readableBytes)
                if requestBytes > configuration.maxRequestBytes { throw requestTooLarge }
                let events: [MultipartStreamParser.Event]
                do {
                    events = try parser.feed(chunk)
                } catch {
                    throw APIError.validation("the multipart body is malformed (\(error))")
                }
                for event in events {
                    try await handle(event, part: &part, done: &done, options: &options, syncTime: &syncTime,
                                     reservation: &reservation)
                }
            }
            if case .file = part {
                // The body ended inside a file part (cut off or no closing boundary); the catch below removes it.
                throw APIError.validation("the multipart body ended before the file part was complete")
            }
            guard parser.isComplete else {
                throw APIError.validation("the multipart body ended before its closing boundary")
            }
            guard !done.isEmpty else {
                throw APIError.validation("no file: send the video as a multipart part named 'file' with a filename")
            }
            let clock = ContinuousClock()
            let syncStart = clock.now
            try await UploadFile.syncDirectory(configuration.uploadsDirectory.path, threadPool: threadPool)
            syncTime += clock.now - syncStart
            return Received(uploads: done, options: options.jobOptions, syncTime: syncTime)
        } catch {
            if case .file(let file, let upload) = part {
                await file.abandon()
                done.append(upload)
            }
            for upload in done { remove(upload) }
            throw error
        }
    }

    private func handle(_ event: MultipartStreamParser.Event, part: inout Part, done: inout [StoredUpload],
                        options: inout FormOptions, syncTime: inout Duration,
                        reservation: inout UploadReservation) async throws {
        switch event {
        case .partBegin(let headers):
            part = try await begin(headers, filesSoFar: done.count, reservation: &reservation)
        case .body(let bytes):
            switch part {
            case .file(let file, var upload):
                upload.sizeBytes += Int64(bytes.readableBytes)
                if upload.sizeBytes > configuration.maxUploadBytes {
                    throw APIError(.contentTooLarge, .uploadTooLarge,
                                   "'\(upload.originalFilename)' is larger than the limit of \(configuration.maxUploadBytes) bytes")
                }
                try reservation.addBytes(Int64(bytes.readableBytes))
                part = .file(file, upload)
                try await file.write(bytes)
            case .field(let name, var value):
                guard value.readableBytes + bytes.readableBytes <= 4096 else {
                    throw APIError.validation("form field '\(name)' is too long")
                }
                value.writeImmutableBuffer(bytes)
                part = .field(name: name, value: value)
            case .none, .ignored:
                break
            }
        case .partEnd:
            switch part {
            case .file(let file, let upload):
                // Listed first so that a failing fsync below still gets the file removed.
                part = .none
                done.append(upload)
                let clock = ContinuousClock()
                let syncStart = clock.now
                try await file.syncAndClose()
                try await UploadFile.syncDirectory(upload.file.deletingLastPathComponent().path, threadPool: threadPool)
                syncTime += clock.now - syncStart
            case .field(let name, let value):
                let text = String(buffer: value)
                try InputText.check(text, field: "form field '\(name)'")
                try options.set(name, text)
            case .none, .ignored:
                break
            }
            part = .none
        }
    }

    /// Decides what a part is once its headers are complete; opens the file for a `file` part.
    private func begin(_ headers: [String: String], filesSoFar: Int, reservation: inout UploadReservation) async throws -> Part {
        let disposition = ContentDisposition(headers["content-disposition"] ?? "")
        guard let name = disposition.name else { return .ignored }
        if name == "file" {
            guard let filename = disposition.filename.map(Self.basename), !filename.isEmpty else {
                throw APIError.validation("the 'file' part needs a filename")
            }
            // The parser refused control bytes in the header block; a backslash escape cannot add one,
            // but the rule is checked on the name itself too (tabs, bidi overrides).
            try InputText.check(filename, field: "the file name")
            guard filename.utf8.count <= Self.maxFilenameBytes else {
                throw APIError.validation("the file name may be at most \(Self.maxFilenameBytes) bytes")
            }
            guard filesSoFar < configuration.maxFilesPerRequest else {
                throw APIError(.contentTooLarge, .tooManyFiles,
                               "an upload may carry at most \(configuration.maxFilesPerRequest) files")
            }
            let ext = try configuration.checkExtension(of: filename)
            try reservation.addJob()
            let jobID = UUID()
            let directory = configuration.uploadsDirectory.appendingPathComponent(jobID.uuidString.lowercased(), isDirectory: true)
            let fileURL = directory.appendingPathComponent("input.\(ext)")
            let upload = StoredUpload(jobID: jobID, file: fileURL, originalFilename: filename, fileExtension: ext, sizeBytes: 0)
            try await UploadFile.makeDirectory(directory.path, threadPool: threadPool)
            do {
                let file = try await UploadFile.create(path: fileURL.path, threadPool: threadPool)
                return .file(file, upload)
            } catch {
                remove(upload)
                throw error
            }
        }
        if FormOptions.fieldNames.contains(name) { return .field(name: name, value: ByteBuffer()) }
        return .ignored
    }

    /// What most file systems allow for one name; the name is stored and shown, not used as a path.
    static let maxFilenameBytes = 255

    var requestTooLarge: APIError {
        APIError(.contentTooLarge, .requestTooLarge,
                 "the upload request is larger than the limit of \(configuration.maxRequestBytes) bytes "
                    + "(all files together; each file may have at most \(configuration.maxUploadBytes) bytes)")
    }

    /// Deletes an upload's folder (file and directory); used on every failure path.
    func remove(_ upload: StoredUpload) {
        let directory = upload.file.deletingLastPathComponent()
        do {
            try FileManager.default.removeItem(at: directory)
        } catch {
            logger.warning("could not remove partial upload", metadata: ["path": "\(directory.path)", "error": "\(error)"])
        }
    }

    /// The last path component of a client-supplied name (browsers may send a full Windows path).
    static func basename(_ name: String) -> String {
        let last = name.split(whereSeparator: { $0 == "/" || $0 == "\\" }).last.map(String.init) ?? ""
        return last.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The boundary parameter of a `multipart/form-data` content type.
    static func boundary(_ contentType: String?) -> String? {
        guard let contentType else { return nil }
        let params = contentType.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
        guard params.first?.lowercased() == "multipart/form-data" else { return nil }
        for param in params.dropFirst() {
            guard let eq = param.firstIndex(of: "=") else { continue }
            guard param[..<eq].trimmingCharacters(in: .whitespaces).lowercased() == "boundary" else { continue }
            var value = param[param.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") { value = String(value.dropFirst().dropLast()) }
            return value.isEmpty || value.count > 200 ? nil : value
        }
        return nil
    }
}
