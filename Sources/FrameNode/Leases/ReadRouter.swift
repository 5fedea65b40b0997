import FrameCluster
import FrameCore
import FrameWire
import Foundation

/// Matches `READ_DATA` answers to the `READ` requests decode threads are
/// waiting on.
///
/// Decoding runs on plain threads (libavformat's I/O callbacks block), so a
/// read is a blocking call here: it registers a pending request, sends `READ`
/// through the lease's outbox when connected, and waits until the session
/// hands the answer in, the lease is cancelled or abandoned, or the wait
/// times out. A READ issued while disconnected (or lost with a dropped
/// connection) stays pending and is sent again once the lease is resumed
/// (``resend(lease:send:)``); the timeout only counts while connected.
final class ReadRouter: @unchecked Sendable {
    private struct Pending {
        var semaphore: DispatchSemaphore
        var result: Result<[UInt8], FrameFlowError>?
        var lease: LeaseRef
        var message: Message
        /// When the READ was last written; nil while it waits for a connection.
        var sentAt: ContinuousClock.Instant?
    }

    private let lock = NSLock()
    private var nextID: UInt32 = 1
    private var pending: [UInt32: Pending] = [:]

    /// Sends READ and blocks the calling (decode) thread for the answer.
    func read(
        lease: LeaseRef, offset: Int64, length: Int, timeout: Duration, outbox: LeaseOutbox
    ) throws(FrameFlowError) -> [UInt8] {
        let semaphore = DispatchSemaphore(value: 0)
        let id: UInt32 = lock.withLock {
            let id = nextID
            nextID = nextID &+ 1 == 0 ? 1 : nextID &+ 1
            let message = Message.read(Read(requestID: id, lease: lease, offset: UInt64(offset), length: UInt32(length)))
            pending[id] = Pending(semaphore: semaphore, result: nil, lease: lease, message: message, sentAt: nil)
            return id
        }
        if let send = outbox.currentSend { write(id, send) }
        while true {
            if semaphore.wait(timeout: .now() + .milliseconds(100)) == .success {
                let result = lock.withLock { pending.removeValue(forKey: id)?.result }
                guard let result else { throw FrameFlowError(.ioError, "READ \(id) vanished") }
                return try result.get()
            }
            let overdue: Bool = lock.withLock {
                guard let sentAt = pending[id]?.sentAt, ContinuousClock.now - sentAt > timeout else { return false }
                pending[id] = nil
                return true
            }
            if overdue { throw FrameFlowError(.ioError, "no READ_DATA for \(length) bytes at \(offset) within \(timeout)") }
        }
    }

    /// Writes (again) every pending READ of `lease`, after it was resumed.
    func resend(lease: LeaseRef, send: @escaping LeaseOutbox.Send) {
        let ids: [UInt32] = lock.withLock { pending.filter { $0.value.lease == lease && $0.value.result == nil }.map(\.key) }
        for id in ids { write(id, send) }
    }

    /// The connection dropped: nothing in flight will be answered; wait for a resume.
    func connectionLost() {
        lock.withLock { for id in pending.keys { pending[id]?.sentAt = nil } }
    }

    private func write(_ id: UInt32, _ send: @escaping LeaseOutbox.Send) {
        let message: Message? = lock.withLock {
            guard pending[id] != nil else { return nil }
            pending[id]?.sentAt = .now
            return pending[id]?.message
        }
        guard let message else { return }
        Task {
            // A failed write means the connection is going: the READ stays
            // pending and is resent after the resume.
            do { try await send(message) } catch { self.lock.withLock { self.pending[id]?.sentAt = nil } }
        }
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

    /// Fails every pending read of `lease` (cancelled, abandoned), or all of them.
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
