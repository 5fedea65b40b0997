import CLibZip
import Foundation
import FrameCore

/// Reads single entries of a finished result ZIP without unpacking the rest: libzip reads
/// the central directory, then seeks to the one entry asked for. Frames are stored (not
/// deflated), so reading one costs its own bytes. Blocking: call it from a thread pool.
public enum ArchiveReader {
    /// The bytes of the entry `name`; nil when the archive has no such entry.
    /// `limit` guards against an entry larger than a caller wants to hold in memory.
    public static func entry(named name: String, in zip: URL, limit: Int = 64 << 20) throws(ArchiveError) -> [UInt8]? {
        var error: Int32 = 0
        guard let za = zip_open(zip.path, ZIP_RDONLY, &error) else {
            throw ArchiveError(.archiveFailed, "cannot open \(zip.lastPathComponent): libzip error \(error)")
        }
        defer { zip_discard(za) }
        let index = zip_name_locate(za, name, 0)
        guard index >= 0 else { return nil }
        var stat = zip_stat_t()
        zip_stat_init(&stat)
        guard zip_stat_index(za, zip_uint64_t(index), 0, &stat) == 0 else {
            throw ArchiveError(.archiveFailed, "cannot stat \(name) in \(zip.lastPathComponent)")
        }
        let size = Int(stat.size)
        guard size <= limit else { throw ArchiveError(.archiveFailed, "\(name) is \(size) bytes, over \(limit)") }
        guard let file = zip_fopen_index(za, zip_uint64_t(index), 0) else {
            throw ArchiveError(.archiveFailed, "cannot open \(name) in \(zip.lastPathComponent)")
        }
        defer { zip_fclose(file) }
        var bytes = [UInt8](repeating: 0, count: size)
        var done = 0
        while done < size {
            let n = bytes.withUnsafeMutableBytes { zip_fread(file, $0.baseAddress! + done, zip_uint64_t(size - done)) }
            guard n > 0 else { throw ArchiveError(.archiveFailed, "short read of \(name) in \(zip.lastPathComponent)") }
            done += Int(n)
        }
        return bytes
    }
}
