import FrameCore
import Foundation

/// The settings of the user-facing API, usually derived from the
/// coordinator's `cluster.yaml` section (see `CoordinatorConfig`).
///
/// A separate type (rather than `CoordinatorConfig` itself) keeps FrameAPI
/// independent of FrameCluster, so the API can be built and tested without
/// certificates or node settings.
public struct APIConfiguration: Sendable {
    /// Uploads are written to `<uploadsDirectory>/<jobID>/input.<ext>`.
    public var uploadsDirectory: URL
    /// Archives are read from `<resultsDirectory>/<jobID>.zip`.
    public var resultsDirectory: URL
    /// Largest accepted file, per file of a multi-file upload (``maxRequestBytes`` bounds them together).
    public var maxUploadBytes: Int64
    /// Accepted file extensions, lower case without the dot.
    public var allowedExtensions: Set<String>
    public var defaultRate: Rational
    public var defaultOutput: OutputOptions
    /// Secret for JWTs and signed download links; nil: a random one per process
    /// (tokens and links then stop working when the coordinator restarts).
    public var jwtSecret: String?
    /// How long an access token lives.
    public var tokenLifetime: Duration
    /// How long a signed download link lives.
    public var downloadLinkLifetime: Duration
    /// bcrypt cost factor for new password hashes.
    public var bcryptCost: UInt8
    /// Prefix for signed download links (e.g. `https://frames.example`); nil: links are root-relative paths.
    public var publicBaseURL: String?
    /// How long an unfinished resumable (tus) upload lives after its last chunk; its bytes are then deleted.
    public var tusExpiry: Duration = .seconds(24 * 3600)
    /// Unfinished resumable uploads one user may have at once.
    public var maxUnfinishedUploads = 10
    /// During a long PATCH, the offset is made durable (fsync + database) every this many bytes,
    /// so a coordinator killed mid-request resumes from the last checkpoint.
    public var tusCheckpointBytes: Int64 = 8 * 1024 * 1024
    /// How long a refresh token lives (each use rotates it).
    public var refreshTokenLifetime: Duration = .seconds(30 * 24 * 3600)
    /// ZIP downloads per user per ``downloadWindow`` (429 with Retry-After past it); nil: unlimited.
    public var downloadsPerWindow: Int? = 10
    public var downloadWindow: Duration = .seconds(60)
    /// Origins (`https://app.example`) allowed to call the API from a browser (CORS); empty: none.
    public var corsAllowedOrigins: [String] = []
    /// Largest upload request body (all files, fields and framing together).
    public var maxRequestBytes: Int64
    /// Most file parts in one upload request.
    public var maxFilesPerRequest: Int
    /// Per-user limits on stored bytes and active jobs.
    public var quota: UploadQuota
    /// Login attempts per account (normalized e-mail), and attempts (logins and registrations) per client address.
    public var loginLimitPerAccount: RateLimit
    public var loginLimitPerAddress: RateLimit
    /// bcrypt computations at once, and how many may wait for a place before 503 SERVER_BUSY.
    public var bcryptConcurrency: Int
    public var bcryptQueue: Int

    public init(
        uploadsDirectory: URL, resultsDirectory: URL, maxUploadBytes: Int64 = 500 * 1024 * 1024,
        allowedExtensions: [String] = ["mp4", "mov", "mkv", "avi", "webm", "m4v", "mpg", "mpeg", "ts", "flv", "wmv"],
        defaultRate: Rational = Rational(1, 1), defaultOutput: OutputOptions = OutputOptions(format: .jpeg, quality: 2),
        jwtSecret: String? = nil, tokenLifetime: Duration = .seconds(3600),
        downloadLinkLifetime: Duration = .seconds(15 * 60), bcryptCost: UInt8 = 10, publicBaseURL: String? = nil,
        maxRequestBytes: Int64? = nil, maxFilesPerRequest: Int = 10, quota: UploadQuota = UploadQuota(),
        loginLimitPerAccount: RateLimit = RateLimit(attempts: 10, per: .seconds(600)),
        loginLimitPerAddress: RateLimit = RateLimit(attempts: 30, per: .seconds(60)),
        bcryptConcurrency: Int = ProcessInfo.processInfo.activeProcessorCount, bcryptQueue: Int = 64
    ) {
        self.uploadsDirectory = uploadsDirectory
        self.resultsDirectory = resultsDirectory
        self.maxUploadBytes = maxUploadBytes
        self.allowedExtensions = Set(allowedExtensions.map { $0.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: ".")) })
        self.defaultRate = defaultRate
        self.defaultOutput = defaultOutput
        self.jwtSecret = jwtSecret
        self.tokenLifetime = tokenLifetime
        self.downloadLinkLifetime = downloadLinkLifetime
        self.bcryptCost = bcryptCost
        self.publicBaseURL = publicBaseURL
        // Unset: one file at the per-file limit, plus room for the multipart framing and option fields.
        self.maxRequestBytes = maxRequestBytes ?? (maxUploadBytes + Self.framingAllowance)
        self.maxFilesPerRequest = maxFilesPerRequest
        self.quota = quota
        self.loginLimitPerAccount = loginLimitPerAccount
        self.loginLimitPerAddress = loginLimitPerAddress
        self.bcryptConcurrency = bcryptConcurrency
        self.bcryptQueue = bcryptQueue
    }

    /// Bytes a request may carry beyond its files: boundaries, part headers, option fields.
    public static let framingAllowance: Int64 = 64 * 1024

    /// The one rule on file names, for multipart and tus uploads alike: the extension must be
    /// one of ``allowedExtensions`` (case-insensitive), else 415 UNSUPPORTED_EXTENSION naming
    /// what was wrong (a name without any extension is said to be one, not "'.' files").
    /// Returns the extension, lower-case.
    func checkExtension(of filename: String) throws(APIError) -> String {
        let ext = (filename as NSString).pathExtension.lowercased()
        guard ext.isEmpty || !allowedExtensions.contains(ext) else { return ext }
        let allowed = allowedExtensions.sorted().joined(separator: ", ")
        let what = ext.isEmpty ? "'\(filename)' has no file extension" : "'.\(ext)' files are not accepted"
        throw APIError(.unsupportedMediaType, .unsupportedExtension, "\(what); allowed: \(allowed)")
    }
}
