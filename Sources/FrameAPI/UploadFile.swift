#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import FrameCore
import Foundation
import NIOCore
import NIOPosix

/// One file being written from a streaming upload, with plain POSIX calls run
/// on NIO's blocking thread pool.
///
/// POSIX rather than Foundation or NIOFileSystem because the API must tell a
/// full disk (`ENOSPC`, `EDQUOT` -> 507 STORAGE_FULL) from other failures and
/// must `fsync` both the file and its directory before the upload is
/// acknowledged; both need the raw errno and descriptor.
struct UploadFile: Sendable {
    let path: String
    let fd: CInt
    let threadPool: NIOThreadPool

    /// Creates (or truncates) `path` for writing, mode 0640.
    static func create(path: String, threadPool: NIOThreadPool) async throws -> UploadFile {
        let fd = try await threadPool.runIfActive { () throws -> CInt in
            let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o640)
            guard fd >= 0 else { throw Self.error(errno, "cannot create upload file") }
            return fd
        }
        return UploadFile(path: path, fd: fd, threadPool: threadPool)
    }

    /// Writes all of `buffer`, retrying short writes and `EINTR`.
    func write(_ buffer: ByteBuffer) async throws {
        let fd = self.fd
        try await threadPool.runIfActive {
            try buffer.withUnsafeReadableBytes { raw in
                var offset = 0
                while offset < raw.count {
                    let n = posixWrite(fd, raw.baseAddress! + offset, raw.count - offset)
                    if n < 0 {
                        if errno == EINTR { continue }
                        throw Self.error(errno, "cannot write upload file")
                    }
                    offset += n
                }
            }
        }
    }

    /// Flushes the file to stable storage and closes it.
    func syncAndClose() async throws {
        let fd = self.fd
        try await threadPool.runIfActive {
            defer { close(fd) }
            guard fsync(fd) == 0 else { throw Self.error(errno, "cannot fsync upload file") }
        }
    }

    /// Closes without syncing (the file is about to be removed).
    func abandon() async {
        let fd = self.fd
        _ = try? await threadPool.runIfActive { close(fd) }
    }

    /// Creates a directory (and, once, its missing parents), mapping a full disk to 507.
    static func makeDirectory(_ path: String, threadPool: NIOThreadPool) async throws {
        try await threadPool.runIfActive {
            if mkdir(path, 0o750) == 0 || errno == EEXIST { return }
            let first = errno
            guard first == ENOENT else { throw Self.error(first, "cannot create directory \(path)") }
            let parent = (path as NSString).deletingLastPathComponent
            try? FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
            guard mkdir(path, 0o750) == 0 || errno == EEXIST else { throw Self.error(errno, "cannot create directory \(path)") }
        }
    }

    /// Flushes a directory, so that a file created in it survives a crash.
    static func syncDirectory(_ path: String, threadPool: NIOThreadPool) async throws {
        try await threadPool.runIfActive {
            let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            guard fd >= 0 else { throw Self.error(errno, "cannot open directory \(path)") }
            defer { close(fd) }
            guard fsync(fd) == 0 else { throw Self.error(errno, "cannot fsync directory \(path)") }
        }
    }

    /// A full disk is the user's 507; anything else is an internal I/O error.
    static func error(_ code: CInt, _ what: String) -> APIError {
        if code == ENOSPC || code == EDQUOT {
            return APIError(.init(code: 507, reasonPhrase: "Insufficient Storage"), .storageFull,
                            "the server has no space left for this upload")
        }
        return APIError(.internalServerError, .ioError, "\(what): \(String(cString: strerror(code)))")
    }
}

/// The C `write(2)`, named apart from ``UploadFile/write(_:)`` so the call inside it is unambiguous.
private func posixWrite(_ fd: CInt, _ bytes: UnsafeRawPointer, _ count: Int) -> Int {
    write(fd, bytes, count)
}
