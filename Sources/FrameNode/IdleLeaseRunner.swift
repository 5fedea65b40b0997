import FrameCore
import FrameWire

/// A ``LeaseRunner`` that holds no leases and refuses any it is offered with
/// a retryable `SEGMENT_FAILED`, so the coordinator gives the segment to
/// another node. Used by connection tests and by nodes started with
/// `--no-work` to check connectivity without taking jobs.
public actor IdleLeaseRunner: LeaseRunner {
    private var send: (@Sendable (Message) async throws -> Void)?

    public init() {}

    public func attach(send: @escaping @Sendable (Message) async throws -> Void) { self.send = send }
    public func detach() { send = nil }
    public func drain() {}
    public func heldLeases() -> [LeaseRef] { [] }
    public func figures() -> (activeLeases: Int, framesTotal: UInt64) { (0, 0) }

    public func handle(_ message: Message) async {
        guard case .lease(let lease) = message else { return }
        try? await send?(.segmentFailed(SegmentFailed(
            lease: lease.lease, code: ErrorCode.shuttingDown.rawValue, retryable: true,
            message: "this node takes no work")))
    }
}
