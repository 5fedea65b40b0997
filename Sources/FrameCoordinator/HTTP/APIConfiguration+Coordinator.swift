import FrameAPI
import FrameCluster
import FrameCore

extension APIConfiguration {
    /// The API's settings from the coordinator's `cluster.yaml` section.
    ///
    /// Lives here, not in FrameAPI, so that the API module does not depend on
    /// FrameCluster (certificates, TLS, node settings).
    public init(_ config: CoordinatorConfig) {
        self.init(
            uploadsDirectory: config.uploadsDirectory, resultsDirectory: config.resultsDirectory,
            maxUploadBytes: config.maxUploadBytes, allowedExtensions: config.allowedExtensions,
            defaultRate: config.defaultRate,
            defaultOutput: OutputOptions(format: config.defaultFormat, quality: UInt8(clamping: config.defaultQuality)),
            jwtSecret: config.jwtSecret, publicBaseURL: config.publicBaseURL, maxRequestBytes: config.maxRequestBytes,
            maxFilesPerRequest: config.maxFilesPerRequest,
            quota: UploadQuota(maxStoredBytes: config.maxStoredBytesPerUser, maxActiveJobs: config.maxActiveJobsPerUser),
            loginLimitPerAccount: RateLimit(attempts: config.loginAccountAttempts, per: config.loginAccountWindow),
            loginLimitPerAddress: RateLimit(attempts: config.loginAddressAttempts, per: config.loginAddressWindow),
            bcryptConcurrency: config.bcryptConcurrency, bcryptQueue: config.bcryptQueue)
        tusExpiry = config.resumableUploadExpiry
        maxUnfinishedUploads = config.maxUnfinishedUploadsPerUser
        corsAllowedOrigins = config.corsAllowedOrigins
        downloadsPerWindow = config.downloadsPerMinute == 0 ? nil : config.downloadsPerMinute
        refreshTokenLifetime = config.refreshTokenTTL
    }
}
