import FrameCore
import NIOCore

/// `READ_DATA` (0x12, coordinator to node): the answer to one ``Read``:
/// the bytes, fewer at end of file, none at or past EOF, or an error status.
///
/// `status` stays a raw `UInt16` (0 = OK, otherwise an ``ErrorCode`` raw
/// value) so that a code added by a newer coordinator still decodes; use
/// ``errorCode`` to interpret it.
public struct ReadData: Sendable, Hashable {
    /// The `status` of a successful read.
    public static let ok: UInt16 = 0

    /// Echoes `Read.requestID`.
    public var requestID: UInt32
    /// Echoes `Read.offset`.
    public var offset: UInt64
    /// 0 for success, else an ErrorCode raw value (e.g. READ_OUT_OF_RANGE, STALE_EPOCH).
    public var status: UInt16
    /// The bytes read; empty at EOF or on error.
    public var data: ByteBuffer

    public init(requestID: UInt32, offset: UInt64, status: UInt16 = ReadData.ok, data: ByteBuffer = ByteBuffer()) {
        self.requestID = requestID
        self.offset = offset
        self.status = status
        self.data = data
    }

    /// An error answer with no data.
    public init(requestID: UInt32, offset: UInt64, error: ErrorCode) {
        self.init(requestID: requestID, offset: offset, status: error.rawValue)
    }

    public var isOK: Bool { status == Self.ok }

    /// The status as an ErrorCode; nil when it is OK or a code this build does not know.
    public var errorCode: ErrorCode? { ErrorCode(rawValue: status) }
}

extension ReadData: WirePayload {
    static var messageType: MessageType { .readData }

    func encodePayload(into buffer: inout ByteBuffer) {
        buffer.writeWire(requestID)
        buffer.writeWire(offset)
        buffer.writeWire(status)
        buffer.writeWireBytes(data)
    }

    init(payload buffer: inout ByteBuffer) throws(WireError) {
        requestID = try buffer.readWire(UInt32.self, "READ_DATA.requestID")
        offset = try buffer.readWire(UInt64.self, "READ_DATA.offset")
        status = try buffer.readWire(UInt16.self, "READ_DATA.status")
        data = try buffer.readWireBytes("READ_DATA.data")
    }
}
