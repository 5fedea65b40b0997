import FrameCore
import FrameNode
import FrameWire

/// A ``LeaseRunner`` that holds no leases and refuses any it is offered with
/// a retryable `SEGMENT_FAILED`, so the coordinator gives the segment to
/// another node. Connection tests use it to run a real agent without decoding.
actor IdleLeaseRunner: LeaseRunner {
    private var send: (@Sendable (Message) async throws -> Void)?

    init() {}

    func attach(send: @escaping @Sendable (Message) async throws -> Void, resumed: [LeaseRef]) { self.send = send }
    func detach() { send = nil }
    func drain() {}
    func run() async {}
    func heldLeases() -> [LeaseRef] { [] }
    func figures() -> (activeLeases: Int, framesTotal: UInt64) { (0, 0) }

    func handle(_ message: Message) async {
        guard case .lease(let lease) = message else { return }
        try? await send?(.segmentFailed(SegmentFailed(
            lease: lease.lease, code: ErrorCode.shuttingDown.rawValue, retryable: true,
            message: "this node takes no work")))
    }
}
