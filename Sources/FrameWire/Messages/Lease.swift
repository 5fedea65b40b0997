import FrameCore
import NIOCore

/// `LEASE` (0x10, coordinator to node): grants one segment to the node,
/// with everything needed to decode it and no further round trip except the
/// byte reads.
///
/// The node reads the source through ``Read`` requests echoing `lease`, and
/// reports with ``Frame`` and then ``SegmentDone`` or ``SegmentFailed``. The
/// lease lapses `leaseTTLMillis` after the last renewal (each node heartbeat
/// renews all its leases). `lease.segment` must equal `segment.index`; the
/// decoder rejects a frame where they differ, so the two can never disagree
/// inside the program.
public struct Lease: Sendable, Hashable {
    public var lease: LeaseRef
    /// How long the lease lives without a renewal.
    public var leaseTTLMillis: UInt32
    /// Size of the source file in bytes, so the node's reader knows where EOF is.
    public var sourceSize: UInt64
    /// libavformat short name or file extension to help probing; may be empty.
    public var formatHint: String
    public var segment: SegmentSpec
    public var options: OutputOptions

    public init(
        lease: LeaseRef, leaseTTLMillis: UInt32, sourceSize: UInt64, formatHint: String,
        segment: SegmentSpec, options: OutputOptions
    ) {
        self.lease = lease
        self.leaseTTLMillis = leaseTTLMillis
        self.sourceSize = sourceSize
        self.formatHint = formatHint
        self.segment = segment
        self.options = options
    }
}

extension Lease: WirePayload {
    static var messageType: MessageType { .lease }

    func encodePayload(into buffer: inout ByteBuffer) {
        buffer.writeWire(lease)
        buffer.writeWire(leaseTTLMillis)
        buffer.writeWire(sourceSize)
        buffer.writeWire(formatHint)
        buffer.writeWire(segment)
        buffer.writeWire(options)
    }

    init(payload buffer: inout ByteBuffer) throws(WireError) {
        lease = try buffer.readWireLeaseRef("LEASE.lease")
        leaseTTLMillis = try buffer.readWire(UInt32.self, "LEASE.leaseTTLMillis")
        sourceSize = try buffer.readWire(UInt64.self, "LEASE.sourceSize")
        formatHint = try buffer.readWireString("LEASE.formatHint")
        segment = try buffer.readWireSegmentSpec()
        options = try buffer.readWireOutputOptions()
        guard lease.segment == segment.index else {
            throw .malformed("LEASE.lease.segment \(lease.segment) differs from LEASE.segment.index \(segment.index)")
        }
    }
}

// SegmentSpec and OutputOptions travel only inside LEASE, so their encodings live here.
extension ByteBuffer {
    fileprivate mutating func writeWire(_ spec: SegmentSpec) {
        writeWire(spec.index)
        writeWire(spec.streamIndex)
        writeWire(spec.timeBase)
        writeWire(spec.decodeStartPTS)
        writeWire(spec.startPTS)
        writeWire(spec.endPTS)
        writeWire(spec.firstSample)
        writeWire(spec.sampleCount)
        writeWire(spec.rate)
        writeWire(spec.originMicros)
        writeWireArray32(spec.keyframes) { buffer, keyframe in
            buffer.writeWire(keyframe.pts)
            buffer.writeWire(keyframe.pos)
        }
    }

    fileprivate mutating func readWireSegmentSpec() throws(WireError) -> SegmentSpec {
        SegmentSpec(
            index: try readWire(UInt32.self, "LEASE.segment.index"),
            streamIndex: try readWire(UInt32.self, "LEASE.segment.streamIndex"),
            timeBase: try readWireRational("LEASE.segment.timeBase"),
            decodeStartPTS: try readWire(Int64.self, "LEASE.segment.decodeStartPTS"),
            startPTS: try readWire(Int64.self, "LEASE.segment.startPTS"),
            endPTS: try readWire(Int64.self, "LEASE.segment.endPTS"),
            firstSample: try readWire(UInt32.self, "LEASE.segment.firstSample"),
            sampleCount: try readWire(UInt32.self, "LEASE.segment.sampleCount"),
            rate: try readWireRational("LEASE.segment.rate"),
            originMicros: try readWire(Int64.self, "LEASE.segment.originMicros"),
            keyframes: try readWireArray32("LEASE.segment.keyframes", minElementSize: 16) {
                (b: inout ByteBuffer) throws(WireError) in
                Keyframe(pts: try b.readWire(Int64.self, "LEASE.segment.keyframes.pts"),
                         pos: try b.readWire(Int64.self, "LEASE.segment.keyframes.pos"))
            }
        )
    }

    fileprivate mutating func writeWire(_ options: OutputOptions) {
        writeWire(options.format.rawValue)
        writeWire(options.quality)
        writeWire(options.maxWidth)
        writeWire(options.maxHeight)
    }

    fileprivate mutating func readWireOutputOptions() throws(WireError) -> OutputOptions {
        OutputOptions(
            format: try readWireImageFormat("LEASE.options.format"),
            quality: try readWire(UInt8.self, "LEASE.options.quality"),
            maxWidth: try readWire(UInt32.self, "LEASE.options.maxWidth"),
            maxHeight: try readWire(UInt32.self, "LEASE.options.maxHeight")
        )
    }
}

extension ByteBuffer {
    /// An `ImageFormat` byte: 0 PNG, 1 JPEG; anything else is malformed.
    mutating func readWireImageFormat(_ what: String) throws(WireError) -> ImageFormat {
        let raw = try readWire(UInt8.self, what)
        guard let format = ImageFormat(rawValue: raw) else { throw .malformed("\(what): unknown image format \(raw)") }
        return format
    }
}
