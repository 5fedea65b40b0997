import FrameCore
import NIOCore

/// `SEGMENT_DONE` (0x14, node to coordinator): the node has sent every
/// ``Frame`` of the leased segment and releases the lease.
///
/// `frameCount` lets the coordinator check that it received every frame
/// (`SegmentSpec.sampleCount`) before it marks the segment done; the other
/// counters are statistics.
public struct SegmentDone: Sendable, Hashable {
    public var lease: LeaseRef
    /// FRAME messages sent for this lease.
    public var frameCount: UInt32
    /// Pictures decoded, samples or not (a measure of wasted decoding).
    public var decodedFrames: UInt32
    /// Source bytes fetched with READ.
    public var bytesRead: UInt64
    /// Wall time from LEASE to SEGMENT_DONE on the node.
    public var elapsedMillis: UInt32

    public init(lease: LeaseRef, frameCount: UInt32, decodedFrames: UInt32, bytesRead: UInt64, elapsedMillis: UInt32) {
        self.lease = lease
        self.frameCount = frameCount
        self.decodedFrames = decodedFrames
        self.bytesRead = bytesRead
        self.elapsedMillis = elapsedMillis
    }
}

extension SegmentDone: WirePayload {
    static var messageType: MessageType { .segmentDone }

    func encodePayload(into buffer: inout ByteBuffer) {
        buffer.writeWire(lease)
        buffer.writeWire(frameCount)
        buffer.writeWire(decodedFrames)
        buffer.writeWire(bytesRead)
        buffer.writeWire(elapsedMillis)
    }

    init(payload buffer: inout ByteBuffer) throws(WireError) {
        lease = try buffer.readWireLeaseRef("SEGMENT_DONE.lease")
        frameCount = try buffer.readWire(UInt32.self, "SEGMENT_DONE.frameCount")
        decodedFrames = try buffer.readWire(UInt32.self, "SEGMENT_DONE.decodedFrames")
        bytesRead = try buffer.readWire(UInt64.self, "SEGMENT_DONE.bytesRead")
        elapsedMillis = try buffer.readWire(UInt32.self, "SEGMENT_DONE.elapsedMillis")
    }
}
