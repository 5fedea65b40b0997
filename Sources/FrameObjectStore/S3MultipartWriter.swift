import NIOCore

/// Writes a stream of unknown (or known) length to one object with a multipart upload, holding
/// at most one part in memory.
///
/// Bytes are buffered until a part is full, then that part is uploaded before more is accepted
/// (the caller's `write` waits, which is the backpressure a streaming upload needs). The object
/// exists only after ``finish()`` returns; on any failure the caller calls ``abort()`` and the
/// store frees the parts (an abandoned upload left behind costs storage until a lifecycle rule
/// removes it). A stream shorter than one part is stored with one plain PUT.
public struct S3MultipartWriter: Sendable {
    /// S3's limits: parts of 5 MiB ... 5 GiB (the last may be smaller), at most 10,000 of them.
    public static let minimumPartSize = 5 << 20
    public static let maximumPartSize = 5 << 30
    public static let maximumParts = 10_000

    public let client: S3Client
    public let key: String
    public let partSize: Int
    public let contentType: String
    public private(set) var uploadID: String?
    public private(set) var parts: [S3CompletedPart] = []
    public private(set) var bytesWritten: Int64 = 0
    private var buffer: ByteBuffer

    /// `partSize` is raised to S3's minimum, and far enough that `expectedSize` (when known) fits in
    /// 10,000 parts: a 100 GiB upload gets parts of about 10.3 MiB rather than failing at part 10,001.
    public init(client: S3Client, key: String, partSize: Int = 16 << 20, expectedSize: Int64? = nil, contentType: String = "application/octet-stream") {
        self.client = client
        self.key = key
        self.partSize = Self.partSize(requested: partSize, expectedSize: expectedSize)
        self.contentType = contentType
        self.buffer = ByteBuffer()
    }

    /// The part size for `requested` and `expectedSize`, in whole MiB.
    public static func partSize(requested: Int, expectedSize: Int64?) -> Int {
        var size = min(max(requested, minimumPartSize), maximumPartSize)
        if let expectedSize, expectedSize > 0 {
            let needed = (expectedSize + Int64(maximumParts) - 1) / Int64(maximumParts)
            let mib = Int64(1 << 20)
            let rounded = (needed + mib - 1) / mib * mib
            size = max(size, Int(min(rounded, Int64(maximumPartSize))))
        }
        return size
    }

    /// Appends `bytes`; uploads every part that fills up.
    public mutating func write(_ bytes: ByteBuffer) async throws {
        var bytes = bytes
        bytesWritten += Int64(bytes.readableBytes)
        while bytes.readableBytes > 0 {
            let room = partSize - buffer.readableBytes
            var slice = bytes.readSlice(length: min(room, bytes.readableBytes))!
            buffer.writeBuffer(&slice)
            if buffer.readableBytes == partSize { try await flushPart() }
        }
    }

    /// Uploads what is left and assembles the object; returns its size.
    @discardableResult
    public mutating func finish() async throws -> Int64 {
        if uploadID == nil {
            try await client.putObject(key, body: buffer, contentType: contentType)
            buffer.clear()
            return bytesWritten
        }
        if buffer.readableBytes > 0 || parts.isEmpty { try await flushPart() }
        try await client.completeMultipartUpload(key, uploadID: uploadID!, parts: parts)
        return bytesWritten
    }

    /// Abandons the upload (if one was started) so the store frees its parts; best effort, as it
    /// runs on a path that is already failing.
    public func abort() async {
        guard let uploadID else { return }
        do {
            try await client.abortMultipartUpload(key, uploadID: uploadID)
        } catch {
            client.logger.warning("s3 multipart abort failed", metadata: ["key": "\(key)", "error": "\(error)"])
        }
    }

    private mutating func flushPart() async throws {
        if uploadID == nil { uploadID = try await client.createMultipartUpload(key, contentType: contentType) }
        guard parts.count < Self.maximumParts else {
            throw S3Error.rejected(status: 400, code: "TooManyParts", message: "more than \(Self.maximumParts) parts of \(partSize) bytes")
        }
        let number = parts.count + 1
        let etag = try await client.uploadPart(key, uploadID: uploadID!, partNumber: number, body: buffer)
        parts.append(S3CompletedPart(partNumber: number, etag: etag))
        buffer.clear()
    }
}
