import Foundation

/// What a notification says about a job: the webhook's JSON body and the
/// e-mail's text are both made from this one value.
public struct JobNotification: Sendable, Codable, Equatable {
    /// `job.failed` or `job.completed`.
    public var event: String
    public var jobId: UUID
    public var status: String
    public var originalFilename: String
    public var frameCount: Int64
    public var errorCode: String?
    public var errorMessage: String?
    public var occurredAt: Date

    public init(
        event: String, jobId: UUID, status: String, originalFilename: String, frameCount: Int64,
        errorCode: String?, errorMessage: String?, occurredAt: Date
    ) {
        self.event = event
        self.jobId = jobId
        self.status = status
        self.originalFilename = originalFilename
        self.frameCount = frameCount
        self.errorCode = errorCode
        self.errorMessage = errorMessage
        self.occurredAt = occurredAt
    }

    /// The webhook body: compact JSON with sorted keys and ISO 8601 dates, so
    /// the bytes (and their signature) are stable for one notification.
    public func jsonBody() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return Array(try encoder.encode(self))
    }

    public var subject: String {
        let id = jobId.uuidString.lowercased()
        return event == "job.failed"
            ? "FrameFlow job \(id) failed (\(errorCode ?? "UNKNOWN"))"
            : "FrameFlow job \(id) completed"
    }

    public var text: String {
        var lines = [
            "Job: \(jobId.uuidString.lowercased())",
            "File: \(originalFilename)",
            "Status: \(status)",
        ]
        if let errorCode { lines.append("Error code: \(errorCode)") }
        if let errorMessage { lines.append("Error: \(errorMessage)") }
        if status == "COMPLETED" { lines.append("Frames: \(frameCount)") }
        return lines.joined(separator: "\n")
    }
}
