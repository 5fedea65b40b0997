import CLibZip
import Foundation
import FrameCore

/// Writes the result ZIP: frames stored as-is (`ZIP_CM_STORE`, images are already
/// compressed) in the order added, then `manifest.json`.
///
/// The archive is built under a temporary name in the destination's directory and renamed
/// into place by ``finish(manifest:)``, so a reader never sees a half-written ZIP and a crash
/// leaves only a `.partial` file. libzip writes everything at close time: frames added by
/// file URL are read then (keep the files until `finish` returns), frames added as data are
/// held in memory until then, so large jobs should spool to files and use
/// ``add(name:fileURL:)``.
public final class ArchiveWriter {
    public let destination: URL
    /// The temporary file being written.
    public let temporaryURL: URL
    private var archive: OpaquePointer?
    private var names: Set<String> = []

    /// Starts an archive that will appear at `destination` when finished.
    public init(destination: URL) throws(ArchiveError) {
        self.destination = destination
        let dir = destination.deletingLastPathComponent()
        temporaryURL = dir.appendingPathComponent(".\(destination.lastPathComponent).\(UUID().uuidString).partial")
        // libzip creates the file only when closing; fail now, not after all the decoding.
        guard access(dir.path, W_OK) == 0 else {
            throw ArchiveError(.archiveFailed, "cannot write to \(dir.path): \(String(cString: strerror(errno)))")
        }
        var error: Int32 = 0
        guard let za = zip_open(temporaryURL.path, ZIP_CREATE | ZIP_EXCL, &error) else {
            throw ArchiveError(.archiveFailed, "cannot create \(temporaryURL.path): \(Self.describe(code: error))")
        }
        archive = za
    }

    deinit { discard() }

    /// Number of entries added so far (frames and manifest).
    public var count: Int { names.count }

    /// Adds an image from memory.
    public func add(name: String, data: [UInt8]) throws(ArchiveError) {
        let za = try open(name)
        // libzip frees the copy with free() after writing it.
        let copy = malloc(max(data.count, 1))!
        data.withUnsafeBytes { copy.copyMemory(from: $0.baseAddress!, byteCount: data.count) }
        guard let source = zip_source_buffer(za, copy, zip_uint64_t(data.count), 1) else {
            free(copy)
            throw failure("cannot buffer \(name)")
        }
        try insert(name, source, store: true)
    }

    /// Adds an image from a file, read when the archive is finished.
    public func add(name: String, fileURL: URL) throws(ArchiveError) {
        let za = try open(name)
        guard FileManager.default.isReadableFile(atPath: fileURL.path) else {
            throw ArchiveError(.archiveFailed, "cannot read \(fileURL.path)")
        }
        guard let source = zip_source_file(za, fileURL.path, 0, -1) else { throw failure("cannot read \(fileURL.path)") }
        try insert(name, source, store: true)
    }

    /// Adds `manifest.json`, writes the archive and renames it to ``destination``.
    public func finish(manifest: ArchiveManifest) throws(ArchiveError) {
        let json = try manifest.encoded()
        let za = try open("manifest.json")
        let copy = malloc(max(json.count, 1))!
        json.withUnsafeBytes { copy.copyMemory(from: $0.baseAddress!, byteCount: json.count) }
        guard let source = zip_source_buffer(za, copy, zip_uint64_t(json.count), 1) else {
            free(copy)
            throw failure("cannot buffer the manifest")
        }
        try insert("manifest.json", source, store: false)
        guard zip_close(za) == 0 else {
            let error = failure("cannot write \(destination.lastPathComponent)")
            discard()
            throw error
        }
        archive = nil
        guard rename(temporaryURL.path, destination.path) == 0 else {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(at: temporaryURL)
            throw ArchiveError(.archiveFailed, "cannot move the archive into place: \(reason)")
        }
    }

    /// Abandons the archive and removes the temporary file (safe to call more than once).
    public func discard() {
        if let za = archive {
            zip_discard(za)
            archive = nil
        }
        try? FileManager.default.removeItem(at: temporaryURL)
    }

    private func open(_ name: String) throws(ArchiveError) -> OpaquePointer {
        guard let za = archive else { throw ArchiveError(.archiveFailed, "the archive is already finished") }
        guard !name.isEmpty, !name.hasPrefix("/"), !name.contains("..") else {
            throw ArchiveError(.archiveFailed, "invalid entry name \(name)")
        }
        guard !names.contains(name) else { throw ArchiveError(.archiveFailed, "duplicate entry \(name)") }
        return za
    }

    private func insert(_ name: String, _ source: OpaquePointer, store: Bool) throws(ArchiveError) {
        let za = archive!
        let index = zip_file_add(za, name, source, zip_flags_t(ZIP_FL_ENC_UTF_8))
        guard index >= 0 else {
            zip_source_free(source)
            throw failure("cannot add \(name)")
        }
        if store { zip_set_file_compression(za, zip_uint64_t(index), ZIP_CM_STORE, 0) }
        names.insert(name)
    }

    private func failure(_ what: String) -> ArchiveError {
        guard let za = archive else { return ArchiveError(.archiveFailed, what) }
        let error = zip_get_error(za)!
        let system = zip_error_code_system(error)
        let code: ErrorCode = system == ENOSPC || system == EDQUOT ? .storageFull : .archiveFailed
        return ArchiveError(code, "\(what): \(String(cString: zip_error_strerror(error)))")
    }

    private static func describe(code: Int32) -> String {
        var error = zip_error_t()
        zip_error_init_with_code(&error, code)
        defer { zip_error_fini(&error) }
        return String(cString: zip_error_strerror(&error))
    }
}
