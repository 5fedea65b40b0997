import FrameCore
import NIOCore

/// `LEASE_URL` (0x17, coordinator to node, protocol version 2 and later): a
/// ``Lease`` whose source the node reads straight from the object store.
///
/// The payload is a LEASE payload, byte for byte, followed by `sourceURL`
/// (a presigned HTTP(S) GET of the job's source object) and the instant it
/// stops working. The node reads the source with HTTP Range requests on that
/// URL instead of `READ`, so the bytes do not pass through the coordinator.
/// READ stays allowed for the lease: a node that cannot use the URL (expired,
/// refused, the store unreachable from where it runs) reads through the
/// coordinator instead (proto-spec/messages.md, "0x17 LEASE_URL").
public struct LeaseURL: Sendable, Hashable {
    public var lease: Lease
    /// Absolute `http` or `https` URL; a bearer credential, never logged with its query.
    public var sourceURL: String
    /// When the URL stops working, in milliseconds since the Unix epoch (UTC).
    public var expiresAtMillis: UInt64

    public init(lease: Lease, sourceURL: String, expiresAtMillis: UInt64) {
        self.lease = lease
        self.sourceURL = sourceURL
        self.expiresAtMillis = expiresAtMillis
    }
}

extension LeaseURL: WirePayload {
    static var messageType: MessageType { .leaseURL }

    func encodePayload(into buffer: inout ByteBuffer) {
        lease.encodePayload(into: &buffer)
        buffer.writeWire(sourceURL)
        buffer.writeWire(expiresAtMillis)
    }

    init(payload buffer: inout ByteBuffer) throws(WireError) {
        lease = try Lease(payload: &buffer)
        sourceURL = try buffer.readWireString("LEASE_URL.sourceURL")
        expiresAtMillis = try buffer.readWire(UInt64.self, "LEASE_URL.expiresAtMillis")
    }
}
