import Foundation

/// An upload that is complete and durable on disk (file and directory
/// fsynced) at `uploads/<jobID>/input.<ext>`, handed to a ``VideoIngestor``.
public struct StoredUpload: Sendable, Hashable {
    /// The id the job must get; the upload's folder is named after it.
    public var jobID: UUID
    /// Absolute path of the stored file.
    public var file: URL
    /// The file name the client sent (last path component only).
    public var originalFilename: String
    /// Lower-case extension without the dot, one of the allowed extensions.
    public var fileExtension: String
    public var sizeBytes: Int64

    public init(jobID: UUID, file: URL, originalFilename: String, fileExtension: String, sizeBytes: Int64) {
        self.jobID = jobID
        self.file = file
        self.originalFilename = originalFilename
        self.fileExtension = fileExtension
        self.sizeBytes = sizeBytes
    }
}
