import FrameCore
import Foundation
import NIOCore

// The primitive encodings of proto-spec/framing.md ("Primitive types"), in one
// place so that every message reads and writes them the same way. Readers throw
// a typed WireError instead of returning nil, so message decoders stay a flat
// list of fields; `what` names the field for the error message.

/// The largest byte length a `string` can have on the wire (u16 prefix).
let maxWireStringLength = Int(UInt16.max)

extension ByteBuffer {
    // MARK: Writing

    mutating func writeWire<T: FixedWidthInteger>(_ value: T) {
        writeInteger(value, endianness: .big)
    }

    mutating func writeWire(_ value: Bool) {
        writeInteger(value ? 1 as UInt8 : 0)
    }

    mutating func writeWire(_ value: Double) {
        writeInteger(value.bitPattern, endianness: .big)
    }

    /// Writes a u16-prefixed UTF-8 string. `encode` cannot fail, so a string
    /// longer than 65,535 bytes is cut at the last whole Unicode scalar that
    /// fits (such strings are only ever free text; identities are validated
    /// long before they reach the wire).
    mutating func writeWire(_ value: String) {
        var utf8 = Array(value.utf8)
        if utf8.count > maxWireStringLength {
            var end = maxWireStringLength
            // Back up over continuation bytes (10xxxxxx) to a scalar boundary.
            while end > 0, utf8[end] & 0xC0 == 0x80 { end -= 1 }
            utf8.removeSubrange(end...)
        }
        writeInteger(UInt16(utf8.count), endianness: .big)
        writeBytes(utf8)
    }

    /// Writes u32-prefixed raw bytes.
    mutating func writeWireBytes(_ value: ByteBuffer) {
        writeInteger(UInt32(value.readableBytes), endianness: .big)
        writeImmutableBuffer(value)
    }

    mutating func writeWire(_ value: UUID) {
        let u = value.uuid
        writeBytes([u.0, u.1, u.2, u.3, u.4, u.5, u.6, u.7, u.8, u.9, u.10, u.11, u.12, u.13, u.14, u.15])
    }

    mutating func writeWire(_ value: Rational) {
        writeWire(value.num)
        writeWire(value.den)
    }

    mutating func writeWire(_ value: LeaseRef) {
        writeWire(value.jobID)
        writeWire(value.segment)
        writeWire(value.epoch)
    }

    /// Writes a u16 element count then the elements. More than 65,535
    /// elements is a programming error on the sending side (the lists that use
    /// a u16 count are bounded by a node's slots), so it traps rather than
    /// silently dropping leases.
    mutating func writeWireArray16<Element>(_ elements: [Element], _ write: (inout ByteBuffer, Element) -> Void) {
        precondition(elements.count <= Int(UInt16.max), "at most 65,535 elements fit a u16 count")
        writeInteger(UInt16(elements.count), endianness: .big)
        for element in elements { write(&self, element) }
    }

    /// Writes a u32 element count then the elements.
    mutating func writeWireArray32<Element>(_ elements: [Element], _ write: (inout ByteBuffer, Element) -> Void) {
        precondition(elements.count <= Int(UInt32.max), "at most 2^32-1 elements fit a u32 count")
        writeInteger(UInt32(elements.count), endianness: .big)
        for element in elements { write(&self, element) }
    }

    // MARK: Reading

    mutating func readWire<T: FixedWidthInteger>(_: T.Type = T.self, _ what: String) throws(WireError) -> T {
        guard let value = readInteger(endianness: .big, as: T.self) else { throw .truncated(what) }
        return value
    }

    mutating func readWireBool(_ what: String) throws(WireError) -> Bool {
        switch try readWire(UInt8.self, what) {
        case 0: return false
        case 1: return true
        case let other: throw .malformed("\(what): bool must be 0 or 1, got \(other)")
        }
    }

    mutating func readWireDouble(_ what: String) throws(WireError) -> Double {
        Double(bitPattern: try readWire(UInt64.self, what))
    }

    /// Reads a u16-prefixed string, rejecting ill-formed UTF-8 (overlong
    /// forms, surrogates, code points past U+10FFFF), so that a decoded
    /// string always re-encodes to the same bytes.
    mutating func readWireString(_ what: String) throws(WireError) -> String {
        let length = Int(try readWire(UInt16.self, what))
        guard let view = readSlice(length: length)?.readableBytesView else { throw .truncated(what) }
        var iterator = view.makeIterator()
        var parser = Unicode.UTF8.ForwardParser()
        parse: while true {
            switch parser.parseScalar(from: &iterator) {
            case .valid: continue
            case .emptyInput: break parse
            case .error: throw .malformed("\(what): invalid UTF-8")
            }
        }
        return String(decoding: view, as: UTF8.self)
    }

    /// Reads u32-prefixed raw bytes into a buffer of their own.
    ///
    /// Not a slice: a slice would keep the whole receive buffer it came from alive (the TLS
    /// handler's and the decoder's cumulation, often several times the payload) for as long as
    /// the message lives, queued for a session, a spool write or a slice upload; and the decoder,
    /// finding its buffer shared, copies all of it on the next read. At a thousand busy nodes
    /// those pinned buffers were most of the coordinator's memory. One copy of the payload is
    /// cheaper than both.
    mutating func readWireBytes(_ what: String) throws(WireError) -> ByteBuffer {
        let length = Int(try readWire(UInt32.self, what))
        guard let slice = readSlice(length: length) else { throw .truncated(what) }
        var own = ByteBufferAllocator().buffer(capacity: length)
        own.writeImmutableBuffer(slice)
        return own
    }

    mutating func readWireUUID(_ what: String) throws(WireError) -> UUID {
        guard let b = readBytes(length: 16) else { throw .truncated(what) }
        return UUID(uuid: (b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
                           b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]))
    }

    mutating func readWireRational(_ what: String) throws(WireError) -> Rational {
        let num = try readWire(Int32.self, what)
        let den = try readWire(Int32.self, what)
        return Rational(num, den)
    }

    /// The encoded size of a LeaseRef, used to bound array counts.
    static let leaseRefSize = 28

    mutating func readWireLeaseRef(_ what: String) throws(WireError) -> LeaseRef {
        let job = try readWireUUID(what)
        let segment = try readWire(UInt32.self, what)
        let epoch = try readWire(UInt64.self, what)
        return LeaseRef(jobID: job, segment: segment, epoch: epoch)
    }

    /// Reads a u16 count then that many elements. The count is checked
    /// against the bytes left (each element takes at least `minElementSize`)
    /// before anything is allocated, so a hostile count cannot make the
    /// receiver reserve memory.
    mutating func readWireArray16<Element>(
        _ what: String, minElementSize: Int,
        _ read: (inout ByteBuffer) throws(WireError) -> Element
    ) throws(WireError) -> [Element] {
        let count = Int(try readWire(UInt16.self, what))
        return try readWireElements(count, what, minElementSize: minElementSize, read)
    }

    /// Reads a u32 count then that many elements; see ``readWireArray16``.
    mutating func readWireArray32<Element>(
        _ what: String, minElementSize: Int,
        _ read: (inout ByteBuffer) throws(WireError) -> Element
    ) throws(WireError) -> [Element] {
        let count = Int(try readWire(UInt32.self, what))
        return try readWireElements(count, what, minElementSize: minElementSize, read)
    }

    private mutating func readWireElements<Element>(
        _ count: Int, _ what: String, minElementSize: Int,
        _ read: (inout ByteBuffer) throws(WireError) -> Element
    ) throws(WireError) -> [Element] {
        guard count <= readableBytes / max(minElementSize, 1) else {
            throw WireError(.truncated, message: "\(what): count \(count) cannot fit in the \(readableBytes) bytes left")
        }
        var elements: [Element] = []
        elements.reserveCapacity(count)
        for _ in 0..<count { elements.append(try read(&self)) }
        return elements
    }
}
