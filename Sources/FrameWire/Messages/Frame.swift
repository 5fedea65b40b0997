import FrameCore
import NIOCore

/// `FRAME` (0x13, node to coordinator): one extracted, encoded image of a
/// leased segment.
///
/// The coordinator stores it under a name derived from `sampleIndex` alone,
/// so a frame delivered twice (after a re-lease) overwrites itself with the
/// same picture: redelivery is idempotent. A frame whose `lease.epoch` is
/// no longer current is refused with a non-fatal `ERROR STALE_EPOCH`.
public struct Frame: Sendable, Hashable {
    public var lease: LeaseRef
    /// Global sample number within the job (0-based).
    public var sampleIndex: UInt32
    /// Presentation timestamp of the source frame, in the stream time base.
    public var pts: Int64
    /// The same instant in seconds from the container start, for display.
    public var seconds: Double
    public var format: ImageFormat
    public var width: UInt32
    public var height: UInt32
    /// The encoded PNG or JPEG file.
    public var data: ByteBuffer

    public init(
        lease: LeaseRef, sampleIndex: UInt32, pts: Int64, seconds: Double, format: ImageFormat,
        width: UInt32, height: UInt32, data: ByteBuffer
    ) {
        self.lease = lease
        self.sampleIndex = sampleIndex
        self.pts = pts
        self.seconds = seconds
        self.format = format
        self.width = width
        self.height = height
        self.data = data
    }
}

extension Frame: WirePayload {
    static var messageType: MessageType { .frame }

    func encodePayload(into buffer: inout ByteBuffer) {
        buffer.writeWire(lease)
        buffer.writeWire(sampleIndex)
        buffer.writeWire(pts)
        buffer.writeWire(seconds)
        buffer.writeWire(format.rawValue)
        buffer.writeWire(width)
        buffer.writeWire(height)
        buffer.writeWireBytes(data)
    }

    init(payload buffer: inout ByteBuffer) throws(WireError) {
        lease = try buffer.readWireLeaseRef("FRAME.lease")
        sampleIndex = try buffer.readWire(UInt32.self, "FRAME.sampleIndex")
        pts = try buffer.readWire(Int64.self, "FRAME.pts")
        seconds = try buffer.readWireDouble("FRAME.seconds")
        format = try buffer.readWireImageFormat("FRAME.format")
        width = try buffer.readWire(UInt32.self, "FRAME.width")
        height = try buffer.readWire(UInt32.self, "FRAME.height")
        data = try buffer.readWireBytes("FRAME.data")
    }
}
