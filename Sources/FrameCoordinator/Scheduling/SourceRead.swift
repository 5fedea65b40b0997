#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import FrameCore
import FrameWire
import Foundation
import NIOCore
import NIOPosix

/// Which bytes of a lease's source one READ may have: the READ_DATA rule of
/// proto-spec/messages.md as a pure function of the wire values.
///
/// Every number is checked here, in unsigned arithmetic that cannot
/// overflow, before any of it reaches a file call: an offset of 2^63 or more
/// used to reach `FileHandle.seek(toOffset:)`, whose conversion to `off_t`
/// traps and took the whole coordinator down. What comes out is small and
/// exact: an `Int64` offset no larger than the source size and a byte count
/// of at most ``Read/maxLength``.
public enum ReadRange: Sendable, Equatable {
    /// Read `count` bytes at `offset`; `count` is 0 at the end of the file (EOF).
    case bytes(offset: Int64, count: Int)
    /// Answer `READ_OUT_OF_RANGE`, with a reason for the log.
    case outOfRange(String)

    /// The answer to a READ of `length` bytes at `offset` of a `sourceSize`-byte file.
    public static func of(offset: UInt64, length: UInt32, sourceSize: Int64) -> ReadRange {
        // The decoder already refuses these lengths (MALFORMED_FRAME); a Read built in-process is checked too.
        guard (1...Read.maxLength).contains(length) else {
            return .outOfRange("length \(length) is outside 1...\(Read.maxLength)")
        }
        guard sourceSize >= 0 else { return .outOfRange("the source has no size") }
        let size = UInt64(sourceSize)
        guard offset <= size else {
            return .outOfRange("offset \(offset) is past the end of the \(size)-byte source")
        }
        // offset <= size <= Int64.max, and size - offset cannot underflow.
        let count = min(UInt64(length), size - offset)
        return .bytes(offset: Int64(offset), count: Int(count))
    }
}

/// Reads byte ranges of uploads with `pread` on NIO's blocking thread pool,
/// never on the cooperative pool that runs the node sessions.
///
/// Each read opens and closes the file: a descriptor cached across reads
/// could be closed (job finished, cancelled) while another read of it is
/// still on the pool, and a reused descriptor number would then hand a node
/// the bytes of some other file. One `open` per 1 MiB read costs nothing
/// next to the read itself.
struct SourceReader: Sendable {
    let threadPool: NIOThreadPool

    /// Up to `count` bytes at `offset` of `url`; fewer only at the end of the file.
    func read(_ url: URL, offset: Int64, count: Int) async throws -> ByteBuffer {
        let path = url.path
        return try await threadPool.runIfActive { () throws -> ByteBuffer in
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw FrameFlowError(.ioError, "cannot open the upload: \(String(cString: strerror(errno)))") }
            defer { close(fd) }
            var buffer = ByteBufferAllocator().buffer(capacity: count)
            var done = 0
            while done < count {
                var n = 0
                buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count - done) { raw in
                    n = pread(fd, raw.baseAddress, count - done, off_t(offset) + off_t(done))
                    return max(n, 0)
                }
                if n < 0 {
                    if errno == EINTR { continue }
                    throw FrameFlowError(.ioError, "cannot read the upload: \(String(cString: strerror(errno)))")
                }
                if n == 0 { break }  // end of file: fewer bytes than asked
                done += n
            }
            return buffer
        }
    }
}
