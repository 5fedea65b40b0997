import FrameCore
import FrameWire
import Foundation
import Synchronization

/// Everything one lease sends to the coordinator goes through its outbox, so
/// the lease survives a dropped connection.
///
/// While connected, a decode thread's message is written at once (and the
/// thread waits for the write: that is the back-pressure). While
/// disconnected, FRAME / SEGMENT_DONE / SEGMENT_FAILED are kept in memory, up
/// to ``maxBufferedBytes`` (then the decode thread waits for the reconnect or
/// the lease's abandonment), and resent in order once the coordinator's
/// WELCOME lists the lease in `resumedLeases`. The last frames written before
/// a drop may have died in the socket buffers with the connection, so the
/// outbox also keeps a short tail of what it wrote (``maxTailFrames``,
/// ``maxTailBytes``) and resends it first; the coordinator names frames by
/// sample index, so a frame it already had simply replaces itself.
final class LeaseOutbox: @unchecked Sendable {
    typealias Send = @Sendable (Message) async throws -> Void

    /// Results kept per lease while disconnected before the decoder waits.
    static let maxBufferedBytes = 64 << 20
    /// Recently written messages resent after a reconnect.
    static let maxTailFrames = 48
    static let maxTailBytes = 24 << 20

    private let condition = NSCondition()
    private var send: Send?
    /// Bumped on every connect and disconnect, so a write that failed on an
    /// old connection does not mark a newer one as gone.
    private var generation: UInt64 = 0
    private var flushing = false
    private var abandoned = false
    private var buffered: [Message] = []
    private var bufferedBytes = 0
    private var tail: [Message] = []
    private var tailBytes = 0
    private(set) var lastWrite = ContinuousClock.now
    /// Messages written again after a reconnect (for logs and tests).
    private(set) var resent = 0

    /// Where a decode thread's writes run (it cannot await them itself).
    private let background: BackgroundWork

    init(send: Send?, background: BackgroundWork) {
        self.send = send
        self.background = background
    }

    /// The current connection's writer, nil while disconnected or resending.
    var currentSend: Send? { condition.withLock { flushing ? nil : send } }

    /// Connected, nothing waiting to be resent.
    var isIdle: Bool { condition.withLock { send != nil && !flushing && buffered.isEmpty } }

    var resentCount: Int { condition.withLock { resent } }

    /// Sends `message` from a decode thread, or keeps it while disconnected.
    /// Throws `CANCELLED` once the lease is abandoned.
    func deliver(_ message: Message) throws(FrameFlowError) {
        let size = Self.size(of: message)
        condition.lock()
        while true {
            if abandoned {
                condition.unlock()
                throw FrameFlowError(.cancelled, "lease abandoned")
            }
            if let send, !flushing {
                let seen = generation
                condition.unlock()
                do {
                    try blocking(send, message)
                    condition.lock()
                    remember(message, size: size)
                    condition.unlock()
                    return
                } catch {
                    // The node is stopping: nothing will send this, stop decoding.
                    if background.isStopped { throw FrameFlowError(.cancelled, "the node is stopping") }
                    // The connection died under the write: keep the message
                    // for the next one (it may have got through: harmless).
                    condition.lock()
                    if generation == seen { self.send = nil; generation += 1 }
                    continue
                }
            }
            if buffered.isEmpty || bufferedBytes + size <= Self.maxBufferedBytes {
                buffered.append(message)
                bufferedBytes += size
                condition.unlock()
                return
            }
            condition.wait()
        }
    }

    /// The connection dropped: keep everything for a resume.
    func disconnect() {
        condition.withLock {
            send = nil
            generation += 1
        }
    }

    /// The lease was resumed on a new connection: resend the tail and
    /// everything kept, in order, then write directly again.
    func resume(send: @escaping Send) async {
        var batch: [Message] = condition.withLock {
            guard !abandoned else { return [] }
            flushing = true
            self.send = send
            generation += 1
            let out = tail + buffered
            tail = []
            tailBytes = 0
            buffered = []
            bufferedBytes = 0
            return out
        }
        while true {
            for (i, message) in batch.enumerated() {
                do {
                    try await send(message)
                } catch {
                    condition.withLock {
                        buffered = Array(batch[i...]) + buffered
                        bufferedBytes = buffered.reduce(0) { $0 + Self.size(of: $1) }
                        flushing = false
                        self.send = nil
                        generation += 1
                        condition.broadcast()
                    }
                    return
                }
                condition.withLock {
                    resent += 1
                    remember(message, size: Self.size(of: message))
                }
            }
            let more: [Message] = condition.withLock {
                let next = buffered
                buffered = []
                bufferedBytes = 0
                if next.isEmpty {
                    flushing = false
                    condition.broadcast()
                }
                return next
            }
            if more.isEmpty { return }
            batch = more
        }
    }

    /// The lease is gone (not resumed, cancelled, its TTL passed): drop
    /// everything and release a waiting decoder.
    func abandon() {
        condition.withLock {
            abandoned = true
            send = nil
            buffered = []
            bufferedBytes = 0
            tail = []
            tailBytes = 0
            condition.broadcast()
        }
    }

    /// Must hold the lock.
    private func remember(_ message: Message, size: Int) {
        lastWrite = .now
        switch message {
        case .frame, .segmentDone, .segmentFailed:
            tail.append(message)
            tailBytes += size
            while tail.count > Self.maxTailFrames || (tailBytes > Self.maxTailBytes && tail.count > 1) {
                tailBytes -= Self.size(of: tail.removeFirst())
            }
        default:
            break
        }
    }

    private static func size(of message: Message) -> Int {
        if case .frame(let frame) = message { return frame.data.readableBytes + 64 }
        return 64
    }

    /// Sends from a decode thread and waits until the message is handed to the connection.
    private func blocking(_ send: @escaping Send, _ message: Message) throws {
        let semaphore = DispatchSemaphore(value: 0)
        let outcome = Outcome()
        background.submit({
            do { try await send(message) } catch { outcome.error.withLock { $0 = error } }
            semaphore.signal()
        }, refused: {
            outcome.error.withLock { $0 = FrameFlowError(.shuttingDown, "the node is stopping") }
            semaphore.signal()
        })
        semaphore.wait()
        if let error = outcome.error.withLock({ $0 }) { throw error }
    }

    /// How a write handed to ``BackgroundWork`` ended.
    private final class Outcome: Sendable { let error = Mutex<(any Error)?>(nil) }
}
