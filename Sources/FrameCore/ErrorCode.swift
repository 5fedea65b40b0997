/// The stable error vocabulary of FrameFlow.
///
/// One code means the same thing everywhere it appears: in an HTTP problem
/// document (`code`, as the ``name``), in a protocol `ERROR` or
/// `SEGMENT_FAILED` frame (as the 16-bit ``rawValue``) and in a job record
/// (`error_code`). Numbers are grouped by concern and never reused; a new
/// failure gets a new code rather than a new meaning for an old one.
public enum ErrorCode: UInt16, Sendable, CaseIterable, Codable {
    // 1: generic
    case internalError = 1

    // 100-199: node protocol and transport
    case malformedFrame = 100
    case frameTooLarge = 101
    case unknownMessageType = 102
    case unsupportedVersion = 103
    case unexpectedMessage = 104
    case heartbeatTimeout = 105
    case nodeRevoked = 106
    case identityMismatch = 107
    case staleEpoch = 108
    case unknownLease = 109
    case readOutOfRange = 110
    case shuttingDown = 111
    case duplicateSession = 112
    case tlsFailure = 113
    case invalidField = 114
    case progressTimeout = 115

    // 200-299: media (probe, decode, encode)
    case notMedia = 200
    case noVideoStream = 201
    case unsupportedCodec = 202
    case corruptMedia = 203
    case zeroDuration = 204
    case absurdDimensions = 205
    case decodeFailed = 206
    case encodeFailed = 207
    case ioError = 208
    case cancelled = 209
    case invalidRate = 210
    case invalidOptions = 211
    case invalidFrame = 212
    case noFrames = 213

    // 300-399: jobs, uploads and storage
    case uploadTooLarge = 300
    case unsupportedExtension = 301
    case attemptsExhausted = 302
    case storageFull = 303
    case archiveFailed = 304
    case frameCountMismatch = 305
    case jobNotFound = 306
    case invalidJobState = 307
    case nodesLost = 308
    case noEligibleNode = 309
    case requestTooLarge = 310
    case tooManyFiles = 311
    case storageQuotaExceeded = 312
    case jobQuotaExceeded = 313
    case checksumMismatch = 314
    case tooManyUploads = 315
    case uploadExpired = 316
    case objectStoreUnavailable = 317
    case objectStoreRejected = 318

    // 400-499: API, auth and configuration
    case validationFailed = 400
    case unauthorized = 401
    case malformedRequest = 402
    case forbidden = 403
    case notFound = 404
    case methodNotAllowed = 405
    case requestTimeout = 408
    case conflict = 409
    case configInvalid = 420
    case rateLimited = 429
    case databaseUnavailable = 430
    case headersTooLarge = 431
    case serverBusy = 432

    /// The upper-snake-case name used in JSON bodies and logs, e.g. `NOT_MEDIA`.
    public var name: String {
        switch self {
        case .internalError: "INTERNAL_ERROR"
        case .malformedFrame: "MALFORMED_FRAME"
        case .frameTooLarge: "FRAME_TOO_LARGE"
        case .unknownMessageType: "UNKNOWN_MESSAGE_TYPE"
        case .unsupportedVersion: "UNSUPPORTED_VERSION"
        case .unexpectedMessage: "UNEXPECTED_MESSAGE"
        case .heartbeatTimeout: "HEARTBEAT_TIMEOUT"
        case .nodeRevoked: "NODE_REVOKED"
        case .identityMismatch: "IDENTITY_MISMATCH"
        case .staleEpoch: "STALE_EPOCH"
        case .unknownLease: "UNKNOWN_LEASE"
        case .readOutOfRange: "READ_OUT_OF_RANGE"
        case .shuttingDown: "SHUTTING_DOWN"
        case .duplicateSession: "DUPLICATE_SESSION"
        case .tlsFailure: "TLS_FAILURE"
        case .invalidField: "INVALID_FIELD"
        case .progressTimeout: "PROGRESS_TIMEOUT"
        case .notMedia: "NOT_MEDIA"
        case .noVideoStream: "NO_VIDEO_STREAM"
        case .unsupportedCodec: "UNSUPPORTED_CODEC"
        case .corruptMedia: "CORRUPT_MEDIA"
        case .zeroDuration: "ZERO_DURATION"
        case .absurdDimensions: "ABSURD_DIMENSIONS"
        case .decodeFailed: "DECODE_FAILED"
        case .encodeFailed: "ENCODE_FAILED"
        case .ioError: "IO_ERROR"
        case .cancelled: "CANCELLED"
        case .invalidRate: "INVALID_RATE"
        case .invalidOptions: "INVALID_OPTIONS"
        case .invalidFrame: "INVALID_FRAME"
        case .noFrames: "NO_FRAMES"
        case .uploadTooLarge: "UPLOAD_TOO_LARGE"
        case .unsupportedExtension: "UNSUPPORTED_EXTENSION"
        case .attemptsExhausted: "ATTEMPTS_EXHAUSTED"
        case .storageFull: "STORAGE_FULL"
        case .archiveFailed: "ARCHIVE_FAILED"
        case .frameCountMismatch: "FRAME_COUNT_MISMATCH"
        case .jobNotFound: "JOB_NOT_FOUND"
        case .invalidJobState: "INVALID_JOB_STATE"
        case .nodesLost: "NODES_LOST"
        case .noEligibleNode: "NO_ELIGIBLE_NODE"
        case .requestTooLarge: "REQUEST_TOO_LARGE"
        case .tooManyFiles: "TOO_MANY_FILES"
        case .storageQuotaExceeded: "STORAGE_QUOTA_EXCEEDED"
        case .jobQuotaExceeded: "JOB_QUOTA_EXCEEDED"
        case .checksumMismatch: "CHECKSUM_MISMATCH"
        case .tooManyUploads: "TOO_MANY_UPLOADS"
        case .uploadExpired: "UPLOAD_EXPIRED"
        case .objectStoreUnavailable: "OBJECT_STORE_UNAVAILABLE"
        case .objectStoreRejected: "OBJECT_STORE_REJECTED"
        case .validationFailed: "VALIDATION_FAILED"
        case .unauthorized: "UNAUTHORIZED"
        case .malformedRequest: "MALFORMED_REQUEST"
        case .forbidden: "FORBIDDEN"
        case .notFound: "NOT_FOUND"
        case .methodNotAllowed: "METHOD_NOT_ALLOWED"
        case .requestTimeout: "REQUEST_TIMEOUT"
        case .conflict: "CONFLICT"
        case .configInvalid: "CONFIG_INVALID"
        case .rateLimited: "RATE_LIMITED"
        case .databaseUnavailable: "DATABASE_UNAVAILABLE"
        case .headersTooLarge: "HEADERS_TOO_LARGE"
        case .serverBusy: "SERVER_BUSY"
        }
    }

    /// Looks a code up by its ``name``.
    public init?(name: String) {
        guard let code = Self.allCases.first(where: { $0.name == name }) else { return nil }
        self = code
    }

    /// Whether a segment that failed with this code is worth another attempt.
    ///
    /// Corrupt or unsupported input fails the same way on every node, so
    /// retrying it only delays the user's error.
    public var isRetryable: Bool {
        switch self {
        case .notMedia, .noVideoStream, .unsupportedCodec, .corruptMedia, .zeroDuration,
             .absurdDimensions, .invalidRate, .invalidOptions, .unsupportedExtension, .noFrames:
            false
        default:
            true
        }
    }
}
