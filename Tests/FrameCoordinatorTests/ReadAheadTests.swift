import FrameCore
import Foundation
import NIOCore
import Testing
@testable import FrameCoordinator

/// The read-ahead's decisions with plain values: one GET per window, not per READ; READs inside
/// a window being fetched wait for it; memory bounded per lease and overall.
@Suite struct ReadAheadTests {
    static func lease(_ segment: UInt32 = 0, epoch: UInt64 = 1, job: UUID = UUID(uuidString: "00000000-0000-0000-0000-000000000001")!) -> LeaseRef {
        LeaseRef(jobID: job, segment: segment, epoch: epoch)
    }

    /// A MiB scaled down 1024 times: the decisions do not depend on it, and debug builds fill 8 MiB buffers slowly.
    static let unit = 1 << 10

    /// Bytes whose value is their offset (mod 251), so a slice shows where it came from.
    static func bytes(_ range: Range<Int64>) -> ByteBuffer {
        ByteBuffer(bytes: range.map { UInt8($0 % 251) })
    }

    @Test func sequentialReadsOfOneMiBCostOneFetchPerWindow() throws {
        var windows = ReadAheadWindows(windowBytes: 8 * Self.unit, perLease: 2, total: 16)
        let size = Int64(20 * Self.unit)
        var fetches: [Range<Int64>] = []
        var offset: Int64 = 0
        while offset < size {
            switch windows.decide(lease: Self.lease(), offset: offset, count: Self.unit, size: size) {
            case .hit(let data):
                #expect(data == Self.bytes(offset..<min(size, offset + Int64(Self.unit))))
            case .fetch(let fetch):
                fetches.append(fetch.range)
                windows.completed(fetch, bytes: Self.bytes(fetch.range))
            case .wait:
                Issue.record("nothing else is fetching")
            }
            offset += Int64(Self.unit)
        }
        // 20 MiB in 8 MiB windows; the last is cut at the end of the source.
        #expect(fetches == [0..<Int64(8 * Self.unit), Int64(8 * Self.unit)..<Int64(16 * Self.unit), Int64(16 * Self.unit)..<size])
        #expect(windows.windows.count == 2, "at most two windows per lease")
    }

    @Test func aReadInsideAWindowBeingFetchedWaitsForIt() throws {
        var windows = ReadAheadWindows(windowBytes: 8 * Self.unit)
        guard case .fetch(let first) = windows.decide(lease: Self.lease(), offset: 0, count: Self.unit, size: 100 << 10) else {
            Issue.record("a cold read fetches"); return
        }
        #expect(windows.decide(lease: Self.lease(), offset: Int64(Self.unit), count: Self.unit, size: 100 << 10) == .wait(id: first.id))
        // Another lease (a new epoch of the same segment) does not share it.
        guard case .fetch = windows.decide(lease: Self.lease(epoch: 2), offset: Int64(Self.unit), count: Self.unit, size: 100 << 10) else {
            Issue.record("another lease fetches its own"); return
        }
        windows.completed(first, bytes: nil)
        #expect(!windows.isFetching(first.id))
        #expect(windows.windows.isEmpty, "a failed fetch keeps nothing")
    }

    @Test func memoryIsBoundedOverAllLeases() throws {
        var windows = ReadAheadWindows(windowBytes: Self.unit, perLease: 2, total: 3)
        for segment in UInt32(0)..<10 {
            for w in 0..<3 {
                let offset = Int64(w * Self.unit)
                if case .fetch(let fetch) = windows.decide(lease: Self.lease(segment), offset: offset, count: 1000, size: 10 << 10) {
                    windows.completed(fetch, bytes: Self.bytes(fetch.range))
                }
            }
            #expect(windows.windows.filter { $0.lease == Self.lease(segment) }.count <= 2)
            #expect(windows.heldBytes <= 3 * Self.unit)
        }
        windows.forget(job: Self.lease().jobID)
        #expect(windows.heldBytes == 0)
    }
}
