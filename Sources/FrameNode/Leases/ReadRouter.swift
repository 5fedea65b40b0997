import FrameCluster
import FrameCore
import FrameWire
import Foundation

/// Matches `READ_DATA` answers to the `READ` requests decode threads are
/// waiting on.
///
/// Decoding runs on plain threads (libavformat's I/O callbacks block), so a
/// read is a blocking call here: it registers a pending request, sends `READ`
/// through the session, and waits on a semaphore until the session hands the
/// answer in, the lease is cancelled or the wait times out.
final class ReadRouter: @unchecked Sendable {
    private struct Pending {
        var semaphore: DispatchSemaphore
        var result: Result<[UInt8], FrameFlowError>?
        var lease: LeaseRef
    }

    private let lock = NSLock()
    private var nextID: UInt32 = 1
    private var pending: [UInt32: Pending] = [:]

    /// Sends READ and blocks the calling (decode) thread for the answer.
    func read(
        lease: LeaseRef, offset: Int64, length: Int, timeout: Duration,
        send: @escaping @Sendable (Message) async throws -> Void
    ) throws(FrameFlowError) -> [UInt8] {
        let semaphore = DispatchSemaphore(value: 0)
        let id: UInt32 = lock.withLock {
            let id = nextID
            nextID = nextID &+ 1 == 0 ? 1 : nextID &+ 1
            pending[id] = Pending(semaphore: semaphore, result: nil, lease: lease)
            return id
        }
        let message = Message.read(Read(requestID: id, lease: lease, offset: UInt64(offset), length: UInt32(length)))
        Task {
            do { try await send(message) } catch {
                self.complete(id, .failure(FrameFlowError(.ioError, "cannot send READ: \(error)")))
            }
        }
        let waited = semaphore.wait(timeout: .now() + .milliseconds(Int(timeout.milliseconds)))
        let result: Result<[UInt8], FrameFlowError>? = lock.withLock { pending.removeValue(forKey: id)?.result }
        guard waited == .success, let result else {
            throw FrameFlowError(.ioError, "no READ_DATA for \(length) bytes at \(offset) within \(timeout)")
        }
        return try result.get()
    }

    /// Hands in a READ_DATA from the coordinator.
    func deliver(_ data: ReadData) {
        if data.isOK {
            complete(data.requestID, .success(Array(data.data.readableBytesView)))
        } else {
            let code = data.errorCode ?? .ioError
            complete(data.requestID, .failure(FrameFlowError(code, "coordinator refused the read: \(code.name)")))
        }
    }

    /// Fails every pending read of `lease` (cancelled), or all of them (session lost).
    func failAll(lease: LeaseRef? = nil, _ error: FrameFlowError) {
        let ids: [UInt32] = lock.withLock {
            pending.filter { lease == nil || $0.value.lease == lease }.map(\.key)
        }
        for id in ids { complete(id, .failure(error)) }
    }

    private func complete(_ id: UInt32, _ result: Result<[UInt8], FrameFlowError>) {
        let semaphore: DispatchSemaphore? = lock.withLock {
            guard var p = pending[id], p.result == nil else { return nil }
            p.result = result
            pending[id] = p
            return p.semaphore
        }
        semaphore?.signal()
    }
}
