import FrameMedia
import Foundation
import Synchronization

/// Opened decoders of finished segments, kept for the next segment of the same job.
///
/// Opening a video costs more than it looks over READ: the container header
/// (for an MP4 written without faststart, at the end of the file) and the few
/// megabytes `avformat_find_stream_info` analyses at the start, fetched again
/// for every 10-second segment, plus the decoder's warm-up. `frameflow extract`
/// opens once per worker thread; a node that keeps the decoder of the lease it
/// just finished and hands it to the job's next lease does the same, and
/// fetches only the segment's own bytes.
///
/// A decoder is parked by its segment's thread *before* SEGMENT_DONE is sent
/// (the coordinator's next LEASE may arrive at once) and only after a clean
/// run: after an error or a cancel its state is unknown and it is dropped.
/// At most `capacity` decoders wait (one per slot); one unused for
/// `idleLimit` is closed, so a finished job's decoders do not hold memory.
final class DecoderPool: Sendable {
    /// A segment decoder and the source it reads through; used by one thread at a time.
    final class OpenDecoder: @unchecked Sendable {
        let decoder: SegmentDecoder
        let source: RemoteByteSource
        init(decoder: SegmentDecoder, source: RemoteByteSource) {
            self.decoder = decoder
            self.source = source
        }
    }

    private struct Parked {
        var decoder: OpenDecoder
        var since: ContinuousClock.Instant
    }

    let capacity: Int
    let idleLimit: Duration
    private struct State {
        /// Oldest first.
        var parked: [Parked] = []
        var taken = 0
    }
    private let state = Mutex(State())
    /// Decoders handed to a later lease instead of opening the video again (for tests and logs).
    var reuses: Int { state.withLock { $0.taken } }

    init(capacity: Int, idleLimit: Duration = .seconds(10)) {
        self.capacity = max(0, capacity)
        self.idleLimit = idleLimit
    }

    /// The most recently parked decoder of `jobID`'s video, removed from the pool. On a miss the
    /// caller opens a new decoder, so a full pool closes its oldest first: decoders in memory stay
    /// at most `capacity` parked plus the running ones (a 1080p H.264 decoder holds tens of MB).
    func take(jobID: UUID) -> OpenDecoder? {
        var closed: Parked?
        defer { _ = closed }  // closed here, outside the lock
        return state.withLock { state in
            guard let i = state.parked.lastIndex(where: { $0.decoder.source.jobID == jobID }) else {
                if !state.parked.isEmpty, state.parked.count >= capacity { closed = state.parked.removeFirst() }
                return nil
            }
            state.taken += 1
            return state.parked.remove(at: i).decoder
        }
    }

    /// Keeps `decoder` for a later segment of its job, closing the oldest beyond capacity.
    func park(_ decoder: OpenDecoder) {
        let evicted: [Parked] = state.withLock { state in
            state.parked.append(Parked(decoder: decoder, since: .now))
            let excess = max(0, state.parked.count - capacity)
            defer { state.parked.removeFirst(excess) }
            return Array(state.parked.prefix(excess))
        }
        _ = evicted  // closed here, outside the lock
    }

    /// Closes decoders unused for `idleLimit`, and every decoder of `jobID` when given (job cancelled).
    func closeIdle(now: ContinuousClock.Instant = .now, jobID: UUID? = nil) {
        let idleLimit = self.idleLimit
        let closed: [Parked] = state.withLock { state in
            let due = { (entry: Parked) in now - entry.since > idleLimit || entry.decoder.source.jobID == jobID }
            defer { state.parked.removeAll(where: due) }
            return state.parked.filter(due)
        }
        _ = closed  // closed here, outside the lock
    }

    var count: Int { state.withLock { $0.parked.count } }
}
