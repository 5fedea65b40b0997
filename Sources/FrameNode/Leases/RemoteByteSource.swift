import FrameCore
import FrameMedia
import FrameWire
import Foundation
import Logging
import Synchronization

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
///
/// With a ``DirectSource`` (the lease came as LEASE_URL) the chunks are GETs
/// of the presigned URL instead, with the same cache and read-ahead (memory
/// stays bounded by `cachedChunks` + one prefetch). The first direct read
/// that fails turns the source back to READ for the rest of the lease, with a
/// warning naming the code: the coordinator still serves READ for such a
/// lease, so an expired URL or a store this node cannot reach costs a
/// detour, not the segment (proto-spec/messages.md, "0x17 LEASE_URL").
final class RemoteByteSource: ByteSource, Sendable {
    static let chunkSize = 1 << 20
    static let cachedChunks = 6

    let size: Int64
    let jobID: UUID
    private struct State {
        /// The lease READs are made under, and the outbox they go through.
        var lease: LeaseRef
        var outbox: LeaseOutbox
        /// The current lease's presigned URL, until a read through it fails.
        var direct: DirectSource?
        var cache: [Int64: [UInt8]] = [:]
        var recency: [Int64] = []
        var inFlight: Set<Int64> = []
        var fetched: Int64 = 0
        var fetchedDirect: Int64 = 0
        var fallbackCode: ErrorCode?

        mutating func touch(_ index: Int64) {
            recency.removeAll { $0 == index }
            recency.append(index)
        }
    }

    private let state: Mutex<State>
    private let router: ReadRouter
    private let timeout: Duration
    private let prefetchQueue = DispatchQueue(label: "frameflow.node.prefetch")
    private let logger: Logger
    /// Bytes fetched for the current lease (SEGMENT_DONE's `bytesRead`), however they came.
    var bytesFetched: Int64 { state.withLock { $0.fetched } }
    /// Of those, the bytes read straight from the object store.
    var bytesFetchedDirect: Int64 { state.withLock { $0.fetchedDirect } }
    /// The code of the direct read that turned this source back to READ, if one did (logs, tests).
    var fallbackCode: ErrorCode? { state.withLock { $0.fallbackCode } }
    /// Whether reads still go to the presigned URL.
    var readsDirect: Bool { state.withLock { $0.direct != nil } }

    init(size: Int64, lease: LeaseRef, router: ReadRouter, timeout: Duration = .seconds(30), outbox: LeaseOutbox,
         direct: DirectSource? = nil, logger: Logger = Logger(label: "frameflow.node.source")) {
        self.size = size
        self.jobID = lease.jobID
        self.state = Mutex(State(lease: lease, outbox: outbox, direct: direct))
        self.router = router
        self.timeout = timeout
        self.logger = logger
    }

    /// Makes further reads under `lease` (a later segment of the same job), through its outbox
    /// or its own presigned URL. Call it between segments, while no decode is running.
    func rebind(to lease: LeaseRef, outbox: LeaseOutbox, direct: DirectSource? = nil) {
        precondition(lease.jobID == jobID, "a source serves one job's file")
        state.withLock { state in
            state.lease = lease
            state.outbox = outbox
            state.direct = direct
            state.fetched = 0
            state.fetchedDirect = 0
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
            let seen: (cached: [UInt8]?, busy: Bool) = state.withLock { state in
                if let c = state.cache[index] { state.touch(index); return (c, false) }
                if state.inFlight.contains(index) { return (nil, true) }
                state.inFlight.insert(index)
                return (nil, false)
            }
            if let cached = seen.cached { return cached }
            if seen.busy {
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
        let (lease, outbox, direct) = state.withLock { ($0.lease, $0.outbox, $0.direct) }
        if let direct {
            do {
                let data = try direct.read(offset: offset, length: length)
                store(index, data, direct: true)
                return data
            } catch {
                fallBack(from: direct, lease: lease, error)
            }
        }
        do {
            let data = try router.read(lease: lease, offset: offset, length: length, timeout: timeout, outbox: outbox)
            store(index, data, direct: false)
            return data
        } catch {
            state.withLock { _ = $0.inFlight.remove(index) }
            throw error
        }
    }

    /// The presigned URL failed: READ through the coordinator from now on (once, whoever noticed first).
    private func fallBack(from failed: DirectSource, lease: LeaseRef, _ error: FrameFlowError) {
        let first: Bool = state.withLock { state in
            guard let current = state.direct, current.reader.redactedURL == failed.reader.redactedURL,
                  current.expiresAt == failed.expiresAt else { return false }
            state.direct = nil
            state.fallbackCode = error.code
            return true
        }
        guard first else { return }
        logger.warning("direct read from the object store failed; reading through the coordinator", metadata: [
            "job": "\(lease.jobID.uuidString.lowercased())", "segment": "\(lease.segment)", "epoch": "\(lease.epoch)",
            "code": "\(error.code.name)", "error": "\(error.message)", "url": "\(failed.reader.redactedURL)",
        ])
    }

    private func store(_ index: Int64, _ data: [UInt8], direct: Bool) {
        state.withLock { state in
            state.inFlight.remove(index)
            state.cache[index] = data
            state.fetched += Int64(data.count)
            if direct { state.fetchedDirect += Int64(data.count) }
            state.touch(index)
            while state.recency.count > Self.cachedChunks { state.cache[state.recency.removeFirst()] = nil }
        }
    }

    private func prefetch(_ index: Int64) {
        guard index * Int64(Self.chunkSize) < size else { return }
        let start: Bool = state.withLock { state in
            guard state.cache[index] == nil, !state.inFlight.contains(index) else { return false }
            state.inFlight.insert(index)
            return true
        }
        guard start else { return }
        prefetchQueue.async { _ = try? self.fetch(index) }
    }
}
