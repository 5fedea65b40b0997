import FrameCore
import FrameMedia
import Synchronization

/// Shared bookkeeping of one extraction's workers.
final class WorkState: Sendable {
    let total: Int
    let segmentCount: Int
    let next = Atomic<Int>(0)
    let failed = Atomic<Bool>(false)
    let framesDone = Atomic<Int>(0)
    let segmentsDone = Atomic<Int>(0)
    let failure = Mutex<FrameFlowError?>(nil)
    let seconds: Mutex<[Double?]>
    let stats = Mutex(SegmentStats())
    /// Per worker: seconds opening its decoder, seconds from its start to its end.
    let workerTimes = Mutex<[(open: Double, busy: Double)]>([])

    init(total: Int, segments: Int) {
        self.total = total
        self.segmentCount = segments
        seconds = Mutex([Double?](repeating: nil, count: total))
    }

    func nextSegment() -> Int? {
        let i = next.add(1, ordering: .relaxed).oldValue
        return i < segmentCount ? i : nil
    }

    func recordFrame(_ sample: Int, seconds time: Double) -> Int {
        seconds.withLock { if sample < $0.count { $0[sample] = time } }
        return framesDone.add(1, ordering: .relaxed).newValue
    }

    func finishSegment(_ s: SegmentStats) {
        segmentsDone.add(1, ordering: .relaxed)
        stats.withLock { $0.add(s) }
    }

    /// Keeps the first failure (later ones are usually the cancellation it caused).
    func fail(_ error: FrameFlowError) {
        failure.withLock { if $0 == nil { $0 = error } }
        failed.store(true, ordering: .relaxed)
    }
}
