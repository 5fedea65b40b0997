import Foundation
import FrameCore

/// A CRC-32 (zlib's, reflected 0xEDB88320) of a buffer. FrameArchive links no checksum library of
/// its own: callers pass one (FrameMedia's `CRC32.checksum`, which is libdeflate's).
public typealias ZipChecksum = (UnsafeRawBufferPointer) -> UInt32

/// One stored (uncompressed) ZIP entry of a slice, as the central directory will describe it.
///
/// `offset` is where the entry's local header starts, relative to whatever it is measured from:
/// its slice when a segment's slice is written (``ZipSliceBuilder``), the archive when the tail
/// is written (``ZipTail``). Stored as JSON in the per-segment manifest rows.
public struct ZipEntry: Sendable, Hashable, Codable {
    public var name: String
    public var crc32: UInt32
    public var size: UInt64
    public var offset: UInt64
    /// The frame's presentation time, for the archive's `manifest.json`.
    public var seconds: Double
    /// MS-DOS modification time and date, as in the local header.
    public var dosTime: UInt16
    public var dosDate: UInt16

    public init(name: String, crc32: UInt32, size: UInt64, offset: UInt64, seconds: Double, dosTime: UInt16, dosDate: UInt16) {
        self.name = name
        self.crc32 = crc32
        self.size = size
        self.offset = offset
        self.seconds = seconds
        self.dosTime = dosTime
        self.dosDate = dosDate
    }

    enum CodingKeys: String, CodingKey {
        case name, crc32, size, offset, seconds
        case dosTime = "dos_time"
        case dosDate = "dos_date"
    }

    /// The entry moved by `base` bytes (slice-relative to archive-relative).
    public func shifted(by base: UInt64) -> ZipEntry {
        var e = self
        e.offset += base
        return e
    }
}

/// Where ZIP's 32-bit (and 16-bit) fields give way to ZIP64 records. The real limits are the
/// defaults; tests lower them to exercise the ZIP64 encodings without writing 4 GiB.
public struct ZipLimits: Sendable, Hashable {
    /// A size or offset at or above this is written as 0xFFFFFFFF plus a ZIP64 extra field.
    public var maxUInt32: UInt64
    /// An entry count at or above this makes the end records ZIP64.
    public var maxEntries: Int

    public init(maxUInt32: UInt64 = 0xFFFF_FFFF, maxEntries: Int = 0xFFFF) {
        self.maxUInt32 = min(maxUInt32, 0xFFFF_FFFF)
        self.maxEntries = min(maxEntries, 0xFFFF)
    }

    public static let standard = ZipLimits()
}

/// Writes a segment's frames as consecutive stored ZIP local entries (a *slice*): a local file
/// header with the CRC-32 and sizes, then the bytes, for each entry; no data descriptors (each
/// frame is complete before its header is written) and nothing between entries, so slices laid
/// end to end followed by a ``ZipTail`` are a valid ZIP (docs/distributed-assembly.md).
///
/// A value: it returns the header bytes to write before each entry's data and keeps the
/// ``entries`` (offsets relative to the slice) for the manifest rows.
public struct ZipSliceBuilder: Sendable {
    public private(set) var entries: [ZipEntry] = []
    /// Bytes of the slice so far (headers and data).
    public private(set) var length: UInt64 = 0
    let dos: (time: UInt16, date: UInt16)
    let limits: ZipLimits

    /// `modified` is the time every entry carries (the ZIP's MS-DOS time, in UTC).
    public init(modified: Date = Date(), limits: ZipLimits = .standard) {
        self.dos = ZipFormat.dosDateTime(modified)
        self.limits = limits
    }

    /// The local header for `data` stored as `name`; write it, then `data`, before the next entry.
    public mutating func header(name: String, data: UnsafeRawBufferPointer, seconds: Double, checksum: ZipChecksum) throws(ArchiveError) -> [UInt8] {
        try ZipFormat.checkName(name)
        let entry = ZipEntry(
            name: name, crc32: checksum(data), size: UInt64(data.count), offset: length, seconds: seconds,
            dosTime: dos.time, dosDate: dos.date)
        let header = ZipFormat.localHeader(entry, limits: limits)
        entries.append(entry)
        length += UInt64(header.count) + entry.size
        return header
    }

    /// ``header(name:data:seconds:checksum:)`` for a byte array.
    public mutating func header(name: String, data: [UInt8], seconds: Double, checksum: ZipChecksum) throws(ArchiveError) -> [UInt8] {
        var copy = self
        let result = data.withUnsafeBytes { raw in
            Result { () throws(ArchiveError) -> [UInt8] in try copy.header(name: name, data: raw, seconds: seconds, checksum: checksum) }
        }
        self = copy
        return try result.get()
    }
}

/// The end of an archive whose entries were written as slices: the `manifest.json` entry (the
/// same document ``ArchiveWriter`` writes, stored), the central directory, and the end records
/// (ZIP64 when an offset or size passes 4 GiB or there are 65,535 entries or more).
public enum ZipTail {
    /// The tail for `entries` (offsets relative to the archive, in archive order, laid end to end
    /// from 0) when it starts at `offset` (the sum of the slices' lengths).
    ///
    /// The layout is checked, so manifest rows that do not describe contiguous slices fail here
    /// rather than producing an archive readers reject.
    public static func build(
        entries: [ZipEntry], manifest: ArchiveManifest, offset: UInt64, modified: Date = Date(),
        checksum: ZipChecksum, limits: ZipLimits = .standard
    ) throws(ArchiveError) -> [UInt8] {
        var expected: UInt64 = 0
        var names = Set<String>()
        for entry in entries {
            try ZipFormat.checkName(entry.name)
            guard names.insert(entry.name).inserted else { throw ArchiveError(.archiveFailed, "duplicate entry \(entry.name)") }
            guard entry.offset == expected else {
                throw ArchiveError(.archiveFailed, "entry \(entry.name) is at \(entry.offset), expected \(expected): slices are not contiguous")
            }
            expected += ZipFormat.localHeaderLength(entry, limits: limits) + entry.size
        }
        guard expected == offset else {
            throw ArchiveError(.archiveFailed, "the entries end at \(expected) but the tail is to start at \(offset)")
        }
        guard !names.contains("manifest.json") else { throw ArchiveError(.archiveFailed, "duplicate entry manifest.json") }
        let json = [UInt8](try manifest.encoded())
        let dos = ZipFormat.dosDateTime(modified)
        let manifestEntry = json.withUnsafeBytes { raw in
            ZipEntry(name: "manifest.json", crc32: checksum(raw), size: UInt64(json.count), offset: offset, seconds: 0,
                     dosTime: dos.time, dosDate: dos.date)
        }
        var out = ZipFormat.localHeader(manifestEntry, limits: limits)
        out += json
        let all = entries + [manifestEntry]
        let directoryOffset = offset + UInt64(out.count)
        var directorySize: UInt64 = 0
        for entry in all {
            let record = ZipFormat.centralHeader(entry, limits: limits)
            directorySize += UInt64(record.count)
            out += record
        }
        out += ZipFormat.endRecords(
            count: all.count, directorySize: directorySize, directoryOffset: directoryOffset, limits: limits)
        return out
    }
}

/// The byte layout of the ZIP records FrameFlow writes (PKWARE APPNOTE 6.3, little-endian).
enum ZipFormat {
    static let localSignature: UInt32 = 0x0403_4B50
    static let centralSignature: UInt32 = 0x0201_4B50
    static let endSignature: UInt32 = 0x0605_4B50
    static let end64Signature: UInt32 = 0x0606_4B50
    static let locator64Signature: UInt32 = 0x0706_4B50
    /// General purpose flag bit 11: names are UTF-8.
    static let utf8Flag: UInt16 = 0x0800
    /// Made by Unix (3), spec 6.3; regular file, mode 0644, so unzip restores sane permissions.
    static let madeBy: UInt16 = 3 << 8 | 63
    static let externalAttributes: UInt32 = 0o100644 << 16

    static func checkName(_ name: String) throws(ArchiveError) {
        guard !name.isEmpty, !name.hasPrefix("/"), !name.contains(".."), name.utf8.count <= 0xFFFF else {
            throw ArchiveError(.archiveFailed, "invalid entry name \(name)")
        }
    }

    static func needsLocal64(_ e: ZipEntry, _ limits: ZipLimits) -> Bool { e.size >= limits.maxUInt32 }

    static func localHeaderLength(_ e: ZipEntry, limits: ZipLimits) -> UInt64 {
        UInt64(30 + e.name.utf8.count + (needsLocal64(e, limits) ? 20 : 0))
    }

    static func localHeader(_ e: ZipEntry, limits: ZipLimits) -> [UInt8] {
        let zip64 = needsLocal64(e, limits)
        var b = ByteWriter()
        b.u32(localSignature)
        b.u16(zip64 ? 45 : 20)
        b.u16(utf8Flag)
        b.u16(0)  // stored
        b.u16(e.dosTime)
        b.u16(e.dosDate)
        b.u32(e.crc32)
        b.u32(zip64 ? 0xFFFF_FFFF : UInt32(e.size))  // compressed = uncompressed: stored
        b.u32(zip64 ? 0xFFFF_FFFF : UInt32(e.size))
        b.u16(UInt16(e.name.utf8.count))
        b.u16(zip64 ? 20 : 0)
        b.bytes(Array(e.name.utf8))
        if zip64 {
            // The local ZIP64 extra carries both sizes (APPNOTE 4.5.3).
            b.u16(0x0001)
            b.u16(16)
            b.u64(e.size)
            b.u64(e.size)
        }
        return b.out
    }

    static func centralHeader(_ e: ZipEntry, limits: ZipLimits) -> [UInt8] {
        let bigSize = e.size >= limits.maxUInt32
        let bigOffset = e.offset >= limits.maxUInt32
        // Only the fields set to 0xFFFFFFFF appear in the extra, in this order.
        var extra = ByteWriter()
        if bigSize {
            extra.u64(e.size)
            extra.u64(e.size)
        }
        if bigOffset { extra.u64(e.offset) }
        let zip64 = bigSize || bigOffset
        var b = ByteWriter()
        b.u32(centralSignature)
        b.u16(madeBy)
        b.u16(zip64 || needsLocal64(e, limits) ? 45 : 20)
        b.u16(utf8Flag)
        b.u16(0)
        b.u16(e.dosTime)
        b.u16(e.dosDate)
        b.u32(e.crc32)
        b.u32(bigSize ? 0xFFFF_FFFF : UInt32(e.size))
        b.u32(bigSize ? 0xFFFF_FFFF : UInt32(e.size))
        b.u16(UInt16(e.name.utf8.count))
        b.u16(zip64 ? UInt16(4 + extra.out.count) : 0)
        b.u16(0)  // comment
        b.u16(0)  // disk
        b.u16(0)  // internal attributes
        b.u32(externalAttributes)
        b.u32(bigOffset ? 0xFFFF_FFFF : UInt32(e.offset))
        b.bytes(Array(e.name.utf8))
        if zip64 {
            b.u16(0x0001)
            b.u16(UInt16(extra.out.count))
            b.bytes(extra.out)
        }
        return b.out
    }

    /// The end of central directory record, preceded by the ZIP64 end record and its locator when
    /// a count, size or offset does not fit.
    static func endRecords(count: Int, directorySize: UInt64, directoryOffset: UInt64, limits: ZipLimits) -> [UInt8] {
        let manyEntries = count >= limits.maxEntries
        let bigSize = directorySize >= limits.maxUInt32
        let bigOffset = directoryOffset >= limits.maxUInt32
        var b = ByteWriter()
        if manyEntries || bigSize || bigOffset {
            let end64Offset = directoryOffset + directorySize
            b.u32(end64Signature)
            b.u64(44)  // size of the rest of this record
            b.u16(madeBy)
            b.u16(45)
            b.u32(0)  // this disk
            b.u32(0)  // disk with the central directory
            b.u64(UInt64(count))
            b.u64(UInt64(count))
            b.u64(directorySize)
            b.u64(directoryOffset)
            b.u32(locator64Signature)
            b.u32(0)
            b.u64(end64Offset)
            b.u32(1)  // disks
        }
        b.u32(endSignature)
        b.u16(0)
        b.u16(0)
        b.u16(manyEntries ? 0xFFFF : UInt16(count))
        b.u16(manyEntries ? 0xFFFF : UInt16(count))
        b.u32(bigSize ? 0xFFFF_FFFF : UInt32(directorySize))
        b.u32(bigOffset ? 0xFFFF_FFFF : UInt32(directoryOffset))
        b.u16(0)  // comment
        return b.out
    }

    /// MS-DOS time and date of `date` in UTC (2-second resolution; clamped to 1980...2107).
    static func dosDateTime(_ date: Date) -> (time: UInt16, date: UInt16) {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        let year = c.year ?? 1980
        guard year >= 1980 else { return (0, 1 << 5 | 1) }
        guard year <= 2107 else { return (23 << 11 | 59 << 5 | 29, 127 << 9 | 12 << 5 | 31) }
        let time = UInt16(c.hour ?? 0) << 11 | UInt16(c.minute ?? 0) << 5 | UInt16((c.second ?? 0) / 2)
        let day = UInt16(year - 1980) << 9 | UInt16(c.month ?? 1) << 5 | UInt16(c.day ?? 1)
        return (time, day)
    }
}

/// Little-endian field writer.
struct ByteWriter {
    var out: [UInt8] = []
    mutating func u16(_ v: UInt16) { out.append(UInt8(v & 0xFF)); out.append(UInt8(v >> 8)) }
    mutating func u32(_ v: UInt32) { for i in 0..<4 { out.append(UInt8(truncatingIfNeeded: v >> (8 * i))) } }
    mutating func u64(_ v: UInt64) { for i in 0..<8 { out.append(UInt8(truncatingIfNeeded: v >> (8 * i))) } }
    mutating func bytes(_ v: [UInt8]) { out += v }
}
