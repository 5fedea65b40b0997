import CLibDeflate

/// CRC-32 (the ZIP and PNG checksum: reflected polynomial 0xEDB88320), computed by libdeflate.
///
/// Public so that modules which must not link a C library of their own (FrameArchive's ZIP slice
/// writer) get the checksum from here: CLibDeflate is imported by this module only.
public enum CRC32 {
    /// The CRC-32 of `bytes`, continuing `crc` (0 to start) so a long stream can be checked in pieces.
    public static func checksum(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return crc }
        return UInt32(libdeflate_crc32(crc, base, bytes.count))
    }

    /// The CRC-32 of `bytes`.
    public static func checksum(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0) }
    }
}
