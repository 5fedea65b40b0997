import FrameCore
import FrameStore
import Foundation
import Hummingbird

/// A job as the API shows it to its owner.
///
/// `progress` is a fraction from 0 to 1 (frames done / frames planned), not a
/// percentage. `fps` is the exact rate as text: a decimal when it has one
/// ("1", "2.5", "0.1"), otherwise a fraction ("1/3"). `format` is `png` or `jpg`.
public struct VideoResponse: ResponseEncodable, Sendable, Equatable {
    @LowercaseID public var id: UUID
    public var originalFilename: String
    public var status: String
    public var progress: Double
    public var frameCount: Int64
    public var sizeBytes: Int64
    public var durationSeconds: Double?
    public var fps: String
    public var format: String
    public var quality: Int
    public var maxWidth: Int
    public var maxHeight: Int
    public var errorCode: String?
    public var errorMessage: String?
    public var createdAt: Date
    public var updatedAt: Date
    public var completedAt: Date?
    public var expiresAt: Date?
    /// Labels a node must carry to process this job; empty when any node may.
    public var labels: [String: String]

    public init(_ job: JobRecord) {
        id = job.id
        originalFilename = job.originalFilename
        status = job.status.rawValue
        progress = job.status == .completed ? 1 : min(max(job.progress, 0), 1)
        frameCount = job.frameCount
        sizeBytes = job.sizeBytes
        durationSeconds = job.durationSeconds
        fps = Self.rateText(job.fps)
        format = job.output.format.fileExtension
        quality = Int(job.output.quality)
        maxWidth = Int(job.output.maxWidth)
        maxHeight = Int(job.output.maxHeight)
        errorCode = job.errorCode?.name
        errorMessage = job.errorMessage
        createdAt = job.createdAt
        updatedAt = job.updatedAt
        completedAt = job.completedAt
        expiresAt = job.expiresAt
        labels = job.labelRequirement
    }

    /// "2.5" for 5/2 and "0.1" for 1/10 (denominators made of 2s and 5s have exact decimals), "1/3" otherwise.
    static func rateText(_ rate: Rational) -> String {
        guard rate.den > 0 else { return rate.description }
        var d = Int64(rate.den), digits = 0, scale: Int64 = 1
        var twos = 0, fives = 0
        while d % 2 == 0 { d /= 2; twos += 1 }
        while d % 5 == 0 { d /= 5; fives += 1 }
        guard d == 1 else { return rate.description }
        digits = max(twos, fives)
        for _ in 0..<digits { scale *= 10 }
        let scaled = Int64(rate.num) * (scale / Int64(rate.den))
        if digits == 0 { return String(scaled) }
        var frac = String(scaled % scale)
        frac = String(repeating: "0", count: digits - frac.count) + frac
        return "\(scaled / scale).\(frac)"
    }
}

/// Several uploads in one request: the accepted videos, and per-file errors
/// when some (but not all) files were refused.
public struct VideoBatchResponse: ResponseEncodable, Sendable {
    public var items: [VideoResponse]
    public var errors: [FileError]?

    /// Why one file of a multi-file upload was refused.
    public struct FileError: Encodable, Sendable {
        public var filename: String
        public var code: String
        public var detail: String
    }
}

/// One page of the caller's videos, newest first.
public struct VideoPage: ResponseEncodable, Sendable {
    public var items: [VideoResponse]
    public var page: Int
    public var size: Int
    public var totalElements: Int
}
