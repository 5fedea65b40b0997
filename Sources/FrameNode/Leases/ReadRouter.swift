import FrameCluster
import FrameCore
import FrameWire
import Foundation
import Synchronization

/// Matches `READ_DATA` answers to the `READ` requests decode threads are
/// waiting on.
///
/// Decoding runs on plain threads (libavformat's I/O callbacks block), so a
/// read is a blocking call here: it registers a pending request, sends `READ`
/// through the lease's outbox when connected, and waits until the session
/// hands the answer in, the lease is cancelled or abandoned, or the wait
/// times out. A READ issued while disconnected (or lost with a dropped
/// connection) stays pending and is sent again once the lease is resumed
/// (``resend(lease:send:)``); the timeout only counts while connected. The
/// writes themselves run as ``BackgroundWork`` (a decode thread cannot await).
final class ReadRouter: Sendable {
    private struct Pending {
        var semaphore: DispatchSemaphore
        var result: Result<[UInt8], FrameFlowError>?
        var lease: LeaseRef
        var message: Message
        /// When the READ was last written; nil while it waits for a connection.
        var sentAt: ContinuousClock.Instant?
    }

    private struct State {
        var nextID: UInt32 = 1
        var pending: [UInt32: Pending] = [:]
    }

    private let state = Mutex(State())
    private let background: BackgroundWork

    init(background: BackgroundWork) {
        self.background = background
    }

    /// Sends READ and blocks the calling (decode) thread for the answer.
    func read(
        lease: LeaseRef, offset: Int64, length: Int, timeout: Duration, outbox: LeaseOutbox
    ) throws(FrameFlowError) -> [UInt8] {
        let semaphore = DispatchSemaphore(value: 0)
        let id: UInt32 = state.withLock { state in
            let id = state.nextID
            state.nextID = state.nextID &+ 1 == 0 ? 1 : state.nextID &+ 1
            let message = Message.read(Read(requestID: id, lease: lease, offset: UInt64(offset), length: UInt32(length)))
            state.pending[id] = Pending(semaphore: semaphore, result: nil, lease: lease, message: message, sentAt: nil)
            return id
        }
        if let send = outbox.currentSend { write(id, send) }
        while true {
            if semaphore.wait(timeout: .now() + .milliseconds(100)) == .success {
                let result = state.withLock { $0.pending.removeValue(forKey: id)?.result }
                guard let result else { throw FrameFlowError(.ioError, "READ \(id) vanished") }
                return try result.get()
            }
            let overdue: Bool = state.withLock { state in
                guard let sentAt = state.pending[id]?.sentAt, ContinuousClock.now - sentAt > timeout else { return false }
                state.pending[id] = nil
                return true
            }
            if overdue { throw FrameFlowError(.ioError, "no READ_DATA for \(length) bytes at \(offset) within \(timeout)") }
        }
    }

    /// Writes (again) every pending READ of `lease`, after it was resumed.
    func resend(lease: LeaseRef, send: @escaping LeaseOutbox.Send) {
        let ids: [UInt32] = state.withLock { $0.pending.filter { $0.value.lease == lease && $0.value.result == nil }.map(\.key) }
        for id in ids { write(id, send) }
    }

    /// The connection dropped: nothing in flight will be answered; wait for a resume.
    func connectionLost() {
        state.withLock { state in for id in state.pending.keys { state.pending[id]?.sentAt = nil } }
    }

    private func write(_ id: UInt32, _ send: @escaping LeaseOutbox.Send) {
        let message: Message? = state.withLock { state in
            guard state.pending[id] != nil else { return nil }
            state.pending[id]?.sentAt = .now
            return state.pending[id]?.message
        }
        guard let message else { return }
        background.submit({
            // A failed write means the connection is going: the READ stays
            // pending and is resent after the resume.
            do { try await send(message) } catch { self.state.withLock { _ = $0.pending[id]?.sentAt = nil } }
        }, refused: {
            self.complete(id, .failure(FrameFlowError(.shuttingDown, "the node is stopping")))
        })
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
        let ids: [UInt32] = state.withLock { state in
            state.pending.filter { lease == nil || $0.value.lease == lease }.map(\.key)
        }
        for id in ids { complete(id, .failure(error)) }
    }

    private func complete(_ id: UInt32, _ result: Result<[UInt8], FrameFlowError>) {
        let semaphore: DispatchSemaphore? = state.withLock { state in
            guard var p = state.pending[id], p.result == nil else { return nil }
            p.result = result
            state.pending[id] = p
            return p.semaphore
        }
        semaphore?.signal()
    }
}
