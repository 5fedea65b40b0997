import FrameCore
import FrameMedia
import FrameWire
import Foundation

/// The video bytes of one lease, fetched from the coordinator on demand with
/// `READ`/`READ_DATA`, as a FrameMedia ``ByteSource``.
///
/// The decoder asks for small, mostly sequential ranges; fetching aligned
/// 1 MiB chunks and keeping a few in memory turns those into few round trips,
/// and reading the next chunk ahead while the current one is decoded hides the
/// latency. Only the ranges the decoder touches are transferred, so a segment
/// of a long video costs its own bytes, not the file's.
///
/// A source outlives its lease when its decoder is kept for the job's next
/// segment (``DecoderPool``): ``rebind(to:outbox:)`` points it at the new
/// lease, and the cached chunks (the same file's bytes) stay.
final class RemoteByteSource: ByteSource, @unchecked Sendable {
    static let chunkSize = 1 << 20
    static let cachedChunks = 6

    let size: Int64
    let jobID: UUID
    /// The lease READs are made under, and the outbox they go through; guarded by `lock`.
    private var lease: LeaseRef
    private var outbox: LeaseOutbox
    private let router: ReadRouter
    private let timeout: Duration
    private let lock = NSLock()
    private var cache: [Int64: [UInt8]] = [:]
    private var recency: [Int64] = []
    private var inFlight: Set<Int64> = []
    private let prefetchQueue = DispatchQueue(label: "frameflow.node.prefetch")
    private var fetched: Int64 = 0
    /// Bytes fetched for the current lease (SEGMENT_DONE's `bytesRead`).
    var bytesFetched: Int64 { lock.withLock { fetched } }

    init(size: Int64, lease: LeaseRef, router: ReadRouter, timeout: Duration = .seconds(30), outbox: LeaseOutbox) {
        self.size = size
        self.jobID = lease.jobID
        self.lease = lease
        self.router = router
        self.outbox = outbox
        self.timeout = timeout
    }

    /// Makes further READs under `lease` (a later segment of the same job), through its outbox.
    /// Call it between segments, while no decode is running.
    func rebind(to lease: LeaseRef, outbox: LeaseOutbox) {
        precondition(lease.jobID == jobID, "a source serves one job's file")
        lock.withLock {
            self.lease = lease
            self.outbox = outbox
            fetched = 0
        }
    }

    func read(at offset: Int64, into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard offset < size, buffer.count > 0 else { return 0 }
        let index = offset / Int64(Self.chunkSize)
        let chunk = try self.chunk(index)
        prefetch(index + 1)
        let within = Int(offset - index * Int64(Self.chunkSize))
        let count = min(buffer.count, chunk.count - within)
        guard count > 0 else { return 0 }
        chunk.withUnsafeBytes { src in
            buffer.baseAddress!.copyMemory(from: src.baseAddress! + within, byteCount: count)
        }
        return count
    }

    private func chunk(_ index: Int64) throws(FrameFlowError) -> [UInt8] {
        while true {
            let state: (cached: [UInt8]?, busy: Bool) = lock.withLock {
                if let c = cache[index] { touch(index); return (c, false) }
                if inFlight.contains(index) { return (nil, true) }
                inFlight.insert(index)
                return (nil, false)
            }
            if let cached = state.cached { return cached }
            if state.busy {
                // The prefetcher is fetching it: wait for it rather than asking twice.
                usleep(500)
                continue
            }
            return try fetch(index)
        }
    }

    private func fetch(_ index: Int64) throws(FrameFlowError) -> [UInt8] {
        let offset = index * Int64(Self.chunkSize)
        let length = Int(min(Int64(Self.chunkSize), size - offset))
        let (lease, outbox) = lock.withLock { (self.lease, self.outbox) }
        do {
            let data = try router.read(lease: lease, offset: offset, length: length, timeout: timeout, outbox: outbox)
            lock.withLock {
                inFlight.remove(index)
                cache[index] = data
                fetched += Int64(data.count)
                touch(index)
                while recency.count > Self.cachedChunks { cache[recency.removeFirst()] = nil }
            }
            return data
        } catch {
            lock.withLock { _ = inFlight.remove(index) }
            throw error
        }
    }

    private func prefetch(_ index: Int64) {
        guard index * Int64(Self.chunkSize) < size else { return }
        let start: Bool = lock.withLock {
            guard cache[index] == nil, !inFlight.contains(index) else { return false }
            inFlight.insert(index)
            return true
        }
        guard start else { return }
        prefetchQueue.async { _ = try? self.fetch(index) }
    }

    /// Must hold `lock`.
    private func touch(_ index: Int64) {
        recency.removeAll { $0 == index }
        recency.append(index)
    }
}
