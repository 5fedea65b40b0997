#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Random access to the bytes of one media file, wherever they live.
///
/// The decoder reads through this protocol (via a custom AVIOContext) so that a node can
/// decode a video whose bytes are fetched over the network on demand, while the coordinator
/// and the CLI read local files. Reads block the calling (decoding) thread by design.
public protocol ByteSource: Sendable {
    /// Total size in bytes.
    var size: Int64 { get }
    /// Blocking read of up to buffer.count bytes at `offset`; returns the count read, 0 only at end of file.
    func read(at offset: Int64, into buffer: UnsafeMutableRawBufferPointer) throws -> Int
}

/// A ``ByteSource`` over a local file, read with `pread` so that several decoders may share
/// one instance without sharing a file position.
public final class FileByteSource: ByteSource {
    public let size: Int64
    /// The file's path, also useful as a format hint (its extension).
    public let path: String
    private let descriptor: Int32

    /// Opens `path` for reading; `ioError` when it cannot be opened or is not a regular file.
    public init(path: String) throws(MediaError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw MediaError(.ioError, "cannot open \(path): \(String(cString: strerror(errno)))")
        }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw MediaError(.ioError, "\(path) is not a regular file")
        }
        self.descriptor = fd
        self.size = Int64(info.st_size)
        self.path = path
    }

    deinit { close(descriptor) }

    public func read(at offset: Int64, into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return 0 }
        while true {
            let n = pread(descriptor, base, buffer.count, off_t(offset))
            if n >= 0 { return n }
            if errno == EINTR { continue }
            throw MediaError(.ioError, "read failed at \(offset): \(String(cString: strerror(errno)))")
        }
    }
}
