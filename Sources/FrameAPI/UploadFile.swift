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
import CLinuxIO

/// One file being written from a streaming upload, with plain POSIX calls run
/// on NIO's blocking thread pool.
///
/// POSIX rather than Foundation or NIOFileSystem because the API must tell a
/// full disk (`ENOSPC`, `EDQUOT` -> 507 STORAGE_FULL) from other failures and
/// must `fsync` both the file and its directory before the upload is
/// acknowledged; both need the raw errno and descriptor.
///
/// Bytes are staged in two 1 MiB buffers: one fills (a copy, no thread hop)
/// while the other is written on the thread pool, at most one write in flight,
/// so receiving and writing overlap and a slow disk still slows the client
/// through back-pressure. After each write the kernel is asked to start
/// writing those pages back (`sync_file_range`), so the fsync before the 201
/// waits for the last megabytes instead of the whole file, and a large upload
/// does not pile up gigabytes of dirty memory. The pages stay cached for the
/// probe, which reads the whole file right after (direct I/O wrote faster but
/// left that read to the disk; the bench measured it slower overall). A write
/// error (a full disk) surfaces at most one buffer later, from ``write(_:)``
/// or ``syncAndClose()``.
///
/// Used by one task at a time (the request's), which awaits each call.
final class UploadFile: @unchecked Sendable {
    /// Each staging buffer.
    static let stagingBytes = 1 << 20

    let path: String
    let fd: CInt
    let threadPool: NIOThreadPool
    /// Two buffers, allocated on first use.
    private var buffers: [StagingBuffer] = []
    private var current = 0
    private var staged = 0
    /// File offset of the current buffer's first byte.
    private var offset: Int64 = 0
    /// The write of the other buffer, if one is running (it holds that buffer until it ends): a
    /// thread-pool job awaited by the next flip, `syncAndClose` or `abandon`, not a detached task.
    private var inFlight: EventLoopFuture<Void>?

    private init(path: String, fd: CInt, threadPool: NIOThreadPool) {
        self.path = path
        self.fd = fd
        self.threadPool = threadPool
    }

    /// Creates (or truncates) `path` for writing, mode 0640.
    static func create(path: String, threadPool: NIOThreadPool) async throws -> UploadFile {
        let fd = try await threadPool.runIfActive { () throws -> CInt in
            let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o640)
            guard fd >= 0 else { throw Self.error(errno, "cannot create upload file") }
            return fd
        }
        return UploadFile(path: path, fd: fd, threadPool: threadPool)
    }

    /// Opens `path` (created if missing) to append at `offset`, cutting off anything after it: bytes
    /// past the last durable offset of a resumable upload were never acknowledged.
    static func openForAppend(path: String, at offset: Int64, threadPool: NIOThreadPool) async throws -> UploadFile {
        let fd = try await threadPool.runIfActive { () throws -> CInt in
            let fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o640)
            guard fd >= 0 else { throw Self.error(errno, "cannot open upload file") }
            guard ftruncate(fd, off_t(offset)) == 0, lseek(fd, off_t(offset), SEEK_SET) == off_t(offset) else {
                let code = errno
                close(fd)
                throw Self.error(code, "cannot position upload file")
            }
            return fd
        }
        let file = UploadFile(path: path, fd: fd, threadPool: threadPool)
        file.offset = offset
        return file
    }

    /// Writes what is staged and flushes the file to stable storage, keeping it open; returns the
    /// file's length, all of which is now durable.
    func checkpoint() async throws -> Int64 {
        try await waitForWrite()
        let tail = Staged(buffer: staged > 0 ? buffers[current] : nil, count: staged, fileOffset: offset)
        let fd = self.fd
        try await threadPool.runIfActive {
            try Self.writeAll(fd, tail)
            guard fsync(fd) == 0 else { throw Self.error(errno, "cannot fsync upload file") }
        }
        offset += Int64(staged)
        staged = 0
        return offset
    }

    /// Appends `buffer`'s bytes: a copy into the staging buffer, and a write when one fills.
    func write(_ buffer: ByteBuffer) async throws {
        var bytes = buffer
        while bytes.readableBytes > 0 {
            if current == buffers.count { buffers.append(StagingBuffer()) }
            let count = min(bytes.readableBytes, Self.stagingBytes - staged)
            bytes.withUnsafeReadableBytes { src in
                (buffers[current].pointer + staged).copyMemory(from: src.baseAddress!, byteCount: count)
            }
            bytes.moveReaderIndex(forwardBy: count)
            staged += count
            if staged == Self.stagingBytes { try await flip() }
        }
    }

    /// Starts writing the full buffer and switches to the other one, once that one's write is done.
    private func flip() async throws {
        try await waitForWrite()
        let full = Staged(buffer: buffers[current], count: staged, fileOffset: offset)
        let fd = self.fd
        inFlight = threadPool.runIfActive(eventLoop: MultiThreadedEventLoopGroup.singleton.any()) {
            try Self.writeAll(fd, full)
            // Only starts the writeback (no wait); a failure here would show again at fsync.
            _ = sync_file_range(fd, off_t(full.fileOffset), off_t(full.count), FRAMEFLOW_SYNC_FILE_RANGE_WRITE)
        }
        offset += Int64(staged)
        current ^= 1
        staged = 0
    }

    private func waitForWrite() async throws {
        guard let running = inFlight else { return }
        inFlight = nil
        try await running.get()
    }

    /// Writes what is staged, flushes the file to stable storage and closes it (also when it throws).
    func syncAndClose() async throws {
        do {
            try await waitForWrite()
        } catch {
            await abandon()
            throw error
        }
        let tail = Staged(buffer: staged > 0 ? buffers[current] : nil, count: staged, fileOffset: offset)
        let fd = self.fd
        buffers = []
        staged = 0
        try await threadPool.runIfActive {
            defer { close(fd) }
            try Self.writeAll(fd, tail)
            guard fsync(fd) == 0 else { throw Self.error(errno, "cannot fsync upload file") }
        }
    }

    /// Closes without syncing (the file is about to be removed).
    func abandon() async {
        _ = try? await waitForWrite()
        buffers = []
        let fd = self.fd
        _ = try? await threadPool.runIfActive { close(fd) }
    }

    /// Writes all of `bytes`, retrying short writes and `EINTR`.
    private static func writeAll(_ fd: CInt, _ bytes: Staged) throws {
        guard let buffer = bytes.buffer else { return }
        var done = 0
        while done < bytes.count {
            let n = posixWrite(fd, buffer.pointer + done, bytes.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw Self.error(errno, "cannot write upload file")
            }
            done += n
        }
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

    /// Gives the file at `source` a second name `target` (replacing an older `target`): a finished
    /// resumable upload becomes `uploads/<job>/input.<ext>` without copying a byte, and keeps its
    /// partial name until the job is committed, so a crash in between loses nothing.
    static func hardLink(_ source: String, _ target: String, threadPool: NIOThreadPool) async throws {
        try await threadPool.runIfActive {
            if unlink(target) != 0, errno != ENOENT { throw Self.error(errno, "cannot replace \(target)") }
            guard link(source, target) == 0 else { throw Self.error(errno, "cannot link upload to \(target)") }
        }
    }

    /// The file's size, or nil when there is no such file.
    static func size(_ path: String, threadPool: NIOThreadPool) async throws -> Int64? {
        try await threadPool.runIfActive {
            var info = stat()
            if stat(path, &info) == 0 { return Int64(info.st_size) }
            if errno == ENOENT { return nil }
            throw Self.error(errno, "cannot stat \(path)")
        }
    }

    /// Removes a file; a missing one is not an error.
    static func remove(_ path: String, threadPool: NIOThreadPool) async throws {
        try await threadPool.runIfActive {
            if unlink(path) != 0, errno != ENOENT { throw Self.error(errno, "cannot remove \(path)") }
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

/// One staging buffer of ``UploadFile/stagingBytes``, freed with its last reference (the
/// upload file's, or a thread-pool write still using it).
private final class StagingBuffer: @unchecked Sendable {
    let pointer = UnsafeMutableRawPointer.allocate(byteCount: UploadFile.stagingBytes, alignment: 4096)

    deinit { pointer.deallocate() }
}

/// A filled part of a staging buffer handed to a thread-pool write; it keeps the buffer alive.
private struct Staged: Sendable {
    var buffer: StagingBuffer?
    var count: Int
    var fileOffset: Int64
}
