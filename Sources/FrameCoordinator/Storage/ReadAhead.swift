import Foundation
import FrameCore
import Synchronization
import NIOCore

/// Which bytes of the sources the coordinator holds in memory for READs served from the object
/// store, and which it is fetching: the decisions of ``ReadAheadCache`` as a value.
///
/// Nodes read a source sequentially in READs of up to 1 MiB; one ranged GET per READ would cost a
/// request (and, with our one-request-per-connection client, a connection) per MiB. So a miss
/// fetches a *window* (8 MiB by default) starting at the READ's offset and the READs after it are
/// answered from memory. Windows belong to a lease (a new epoch starts over); at most
/// `perLease` windows per lease (two: a demuxer reading two places, e.g. an index at the end and
/// the packets, does not thrash) and `total` over all leases are kept, least recently used
/// evicted first, so memory stays below `total × windowBytes` however many leases read at once.
/// A READ that falls in a window being fetched waits for that fetch instead of asking again.
struct ReadAheadWindows: Sendable {
    struct Window: Sendable {
        var lease: LeaseRef
        var start: Int64
        var bytes: ByteBuffer
        var lastUse: UInt64
        var end: Int64 { start + Int64(bytes.readableBytes) }
    }

    struct Fetch: Sendable, Equatable {
        var id: UInt64
        var lease: LeaseRef
        var range: Range<Int64>
    }

    /// What to do for one READ.
    enum Decision: Sendable, Equatable {
        /// Answer with these bytes (all in memory).
        case hit(ByteBuffer)
        /// Another READ is fetching a window that covers this one: wait for fetch `id`, then decide again.
        case wait(id: UInt64)
        /// Fetch `range` (the caller registered it as fetch `id`) and ``completed(_:bytes:)`` it.
        case fetch(Fetch)
    }

    let windowBytes: Int
    let perLease: Int
    let total: Int
    private(set) var windows: [Window] = []
    private(set) var fetching: [Fetch] = []
    private var clock: UInt64 = 0
    private var nextFetch: UInt64 = 1

    init(windowBytes: Int = 8 << 20, perLease: Int = 2, total: Int = 16) {
        self.windowBytes = max(windowBytes, 1)
        self.perLease = max(perLease, 1)
        self.total = max(total, 1)
    }

    /// The bytes held, for the bound's tests and a gauge.
    var heldBytes: Int { windows.reduce(0) { $0 + $1.bytes.readableBytes } }

    /// Decides a READ of `count` (> 0) bytes at `offset` of a `size`-byte source.
    mutating func decide(lease: LeaseRef, offset: Int64, count: Int, size: Int64) -> Decision {
        let wanted = offset..<min(size, offset + Int64(count))
        clock += 1
        if let i = windows.firstIndex(where: { $0.lease == lease && $0.start <= wanted.lowerBound && wanted.upperBound <= $0.end }) {
            windows[i].lastUse = clock
            let slice = windows[i].bytes.getSlice(at: windows[i].bytes.readerIndex + Int(wanted.lowerBound - windows[i].start),
                                                  length: wanted.count)!
            return .hit(slice)
        }
        if let running = fetching.first(where: { $0.lease == lease && $0.range.lowerBound <= wanted.lowerBound && wanted.upperBound <= $0.range.upperBound }) {
            return .wait(id: running.id)
        }
        let fetch = Fetch(id: nextFetch, lease: lease, range: offset..<min(size, offset + Int64(max(count, windowBytes))))
        nextFetch += 1
        fetching.append(fetch)
        return .fetch(fetch)
    }

    /// Fetch `fetch` ended; with `bytes` (nil: it failed) they become a window.
    mutating func completed(_ fetch: Fetch, bytes: ByteBuffer?) {
        fetching.removeAll { $0.id == fetch.id }
        guard let bytes, bytes.readableBytes > 0 else { return }
        clock += 1
        windows.append(Window(lease: fetch.lease, start: fetch.range.lowerBound, bytes: bytes, lastUse: clock))
        evict(keeping: fetch.lease)
    }

    /// Whether fetch `id` is still running.
    func isFetching(_ id: UInt64) -> Bool { fetching.contains { $0.id == id } }

    /// Drops every window of `job` (its source was deleted: cancellation, retention).
    mutating func forget(job: UUID) {
        windows.removeAll { $0.lease.jobID == job }
    }

    private mutating func evict(keeping lease: LeaseRef) {
        while windows.filter({ $0.lease == lease }).count > perLease, let oldest = oldestIndex(where: { $0.lease == lease }) {
            windows.remove(at: oldest)
        }
        while windows.count > total, let oldest = oldestIndex(where: { _ in true }) {
            windows.remove(at: oldest)
        }
    }

    private func oldestIndex(where keep: (Window) -> Bool) -> Int? {
        windows.indices.filter { keep(windows[$0]) }.min { windows[$0].lastUse < windows[$1].lastUse }
    }
}

/// The driver of ``ReadAheadWindows``: performs its fetches with `fetch` and parks the READs that
/// wait for one (continuations, resumed when it ends).
final class ReadAheadCache: Sendable {
    private struct State: Sendable {
        var windows: ReadAheadWindows
        var waiters: [UInt64: [CheckedContinuation<Void, Never>]] = [:]
    }

    private let state: Mutex<State>

    init(windows: ReadAheadWindows) {
        state = Mutex(State(windows: windows))
    }

    var heldBytes: Int { state.withLock { $0.windows.heldBytes } }

    func forget(job: UUID) { state.withLock { $0.windows.forget(job: job) } }

    /// The bytes of one READ; `fetch` gets a byte range and returns exactly those bytes.
    func read(
        lease: LeaseRef, offset: Int64, count: Int, size: Int64,
        fetch: (Range<Int64>) async throws -> ByteBuffer
    ) async throws -> ByteBuffer {
        while true {
            let decision = state.withLock { $0.windows.decide(lease: lease, offset: offset, count: count, size: size) }
            switch decision {
            case .hit(let bytes):
                return bytes
            case .wait(let id):
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let parked = state.withLock { s -> Bool in
                        guard s.windows.isFetching(id) else { return false }
                        s.waiters[id, default: []].append(continuation)
                        return true
                    }
                    if !parked { continuation.resume() }
                }
            case .fetch(let job):
                let bytes: ByteBuffer
                do {
                    bytes = try await fetch(job.range)
                } catch {
                    finish(job, nil)
                    throw error
                }
                finish(job, bytes)
                // The window starts at this READ's offset, so the READ is at its start.
                let length = min(count, bytes.readableBytes)
                return bytes.getSlice(at: bytes.readerIndex, length: length)!
            }
        }
    }

    private func finish(_ fetch: ReadAheadWindows.Fetch, _ bytes: ByteBuffer?) {
        let waiting = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.windows.completed(fetch, bytes: bytes)
            return s.waiters.removeValue(forKey: fetch.id) ?? []
        }
        for continuation in waiting { continuation.resume() }
    }
}
