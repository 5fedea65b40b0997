import Crypto
import FrameCore
import FrameStore
import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOPosix

/// The user-facing HTTP API, ready to be mounted on the coordinator's router.
///
/// It owns accounts, tokens, uploads, job views and downloads, and reaches the
/// rest of the cluster only through ``VideoIngestor`` (upload -> job) and
/// ``JobCanceller`` (cancel -> nodes), so it knows nothing of nodes, FFmpeg or
/// leases. Build it once (the initialiser is async because the JWT key set is
/// an actor) and call ``addRoutes(to:)`` on the router that also carries
/// `/health`, `/ready` and `/admin`; or use ``makeRouter()`` on its own.
public struct FrameAPIServer: Sendable {
    public let configuration: APIConfiguration
    public let users: UserStore
    public let jobs: JobStore
    public let tokens: TokenService
    public let links: SignedLinks
    /// Refresh tokens (hashed): `POST /auth/refresh`, `POST /auth/logout`.
    public let refreshTokens: RefreshTokenStore
    /// Who downloaded what, and the per-user download rate limit's count.
    public let audit: DownloadAuditStore
    let hasher: PasswordHasher
    let logins: LoginGuard
    let uploads: UploadLedger
    let ingestor: any VideoIngestor
    let canceller: any JobCanceller
    let archiveStore: any ArchiveStore
    let threadPool: NIOThreadPool
    let logger: Logger
    /// Resumable (tus) uploads: `/uploads`, and the expiry sweep.
    let tus: TusUploads

    public init(
        configuration: APIConfiguration, database: Database, ingestor: any VideoIngestor,
        canceller: any JobCanceller, logger: Logger, threadPool: NIOThreadPool = .singleton,
        archives: (any ArchiveStore)? = nil, tusPieces: (any TusPieceStore)? = nil, stagingID: String? = nil
    ) async {
        var configuration = configuration
        if configuration.jwtSecret == nil {
            logger.warning("coordinator.jwt_secret is not set: using a random secret; tokens and links will not survive a restart")
            configuration.jwtSecret = SymmetricKey(size: .bits256).withUnsafeBytes { Data($0).base64EncodedString() }
        }
        let secret = configuration.jwtSecret!
        self.configuration = configuration
        users = UserStore(database: database)
        jobs = JobStore(database: database)
        tokens = await TokenService(secret: secret, lifetime: configuration.tokenLifetime)
        links = SignedLinks(secret: secret, lifetime: configuration.downloadLinkLifetime)
        refreshTokens = RefreshTokenStore(database: database)
        audit = DownloadAuditStore(database: database)
        hasher = PasswordHasher(
            cost: configuration.bcryptCost, threadPool: threadPool, concurrency: configuration.bcryptConcurrency,
            queueLimit: configuration.bcryptQueue)
        logins = LoginGuard(perAccount: configuration.loginLimitPerAccount, perAddress: configuration.loginLimitPerAddress)
        uploads = UploadLedger()
        self.ingestor = ingestor
        self.canceller = canceller
        self.archiveStore = archives ?? DirectoryArchiveStore(resultsDirectory: configuration.resultsDirectory)
        self.threadPool = threadPool
        self.logger = logger
        var tus = TusUploads(
            configuration: configuration, store: TusUploadStore(database: database), jobs: jobs, ingestor: ingestor,
            threadPool: threadPool, locks: TusLocks(), logger: logger, pieces: tusPieces)
        if let stagingID { tus.stagingID = stagingID }
        self.tus = tus
    }

    /// Adds `/auth/...`, `/videos...` and `/downloads/{id}` to `router`.
    public func addRoutes(to router: Router<APIRequestContext>) {
        try? FileManager.default.createDirectory(at: configuration.uploadsDirectory, withIntermediateDirectories: true)
        let authenticate = JWTAuthMiddleware(tokens: tokens, users: users)
        let errors = CodedErrorMiddleware<APIRequestContext>(logger: logger)
        // Every group whose routes read a body; the 100 is sent only once a route reads it.
        let expectContinue = ExpectContinueMiddleware()
        let auth = router.group("auth").add(middleware: errors).add(middleware: expectContinue)
        AuthRoutes(users: users, hasher: hasher, tokens: tokens,
                   refresh: RefreshTokens(store: refreshTokens, lifetime: configuration.refreshTokenLifetime), logins: logins)
            .register(public: auth, authenticated: router.group("auth").add(middleware: errors).add(middleware: authenticate))
        let videos = router.group("videos").add(middleware: errors).add(middleware: authenticate).add(middleware: expectContinue)
        let receiver = UploadReceiver(configuration: configuration, threadPool: threadPool, logger: logger)
        let videoRoutes = VideoRoutes(
            jobs: jobs, ingestor: ingestor, canceller: canceller, receiver: receiver, ledger: uploads,
            quota: configuration.quota,
            archives: ArchiveResponder(store: archiveStore, fileIO: FileIO(threadPool: threadPool)),
            links: links, publicBaseURL: configuration.publicBaseURL,
            gate: DownloadGate(audit: audit, limit: configuration.downloadsPerWindow, window: configuration.downloadWindow),
            logger: logger)
        videoRoutes.register(authenticated: videos, downloads: router.group("downloads").add(middleware: errors))
        videoRoutes.register(dialect: router.group("jobs").add(middleware: errors).add(middleware: authenticate))
        let tusMiddleware = TusMiddleware(logger: logger)
        TusRoutes(uploads: tus, publicBaseURL: configuration.publicBaseURL).register(
            public: router.group("uploads").add(middleware: tusMiddleware),
            authenticated: router.group("uploads").add(middleware: tusMiddleware).add(middleware: authenticate)
                .add(middleware: expectContinue))
    }

    /// One pass of the resumable-upload expiry: unfinished uploads past `tusExpiry` lose their
    /// bytes. The coordinator runs it periodically (``uploadSweepInterval``); requests to an
    /// upload past its expiry also expire it on the spot, so the sweep only frees the disk.
    @discardableResult
    public func sweepExpiredUploads() async throws -> Int {
        try await tus.sweep()
    }

    /// How often the coordinator should call ``sweepExpiredUploads()``: a quarter of the expiry,
    /// between 1 s and a minute.
    public var uploadSweepInterval: Duration {
        min(max(configuration.tusExpiry / 4, .seconds(1)), .seconds(60))
    }

    /// The HTTP/1.1 server the API expects: Hummingbird's, plus ``ExpectContinueHandler`` so clients
    /// that send `Expect: 100-continue` (curl, for any body over 1 MB) are not left waiting, and
    /// ``HTTPParseErrorHandler`` so unparsable requests get problem documents too. A connection with
    /// no request in progress for `idleTimeout` is closed, and one whose client sends nothing of a
    /// request body for `bodyTimeout` (``BodyReadTimeoutHandler``); nil: never.
    public static func httpServer(
        idleTimeout: Duration? = defaultIdleTimeout, bodyTimeout: Duration? = defaultBodyTimeout
    ) -> HTTPServerBuilder {
        .http1(configuration: .init(
            additionalChannelHandlers: [HTTPParseErrorHandler(), ExpectContinueHandler()]
                + (bodyTimeout.map { [BodyReadTimeoutHandler(timeout: TimeAmount($0))] } ?? []),
            idleTimeout: idleTimeout.map { TimeAmount($0) }))
    }

    public static var httpServer: HTTPServerBuilder { httpServer() }

    /// How long an idle keep-alive connection is kept by default (`coordinator.http.idle_timeout`).
    public static let defaultIdleTimeout: Duration = .seconds(60)
    /// How long a request body may stall by default (`coordinator.http.body_timeout`).
    public static let defaultBodyTimeout: Duration = .seconds(60)

    /// Adds ``RequestGuardMiddleware`` to a router that has no routes yet; `load` the returned
    /// table with `router.routes` once every route is added (for 405 answers).
    public static func addRequestGuard(to router: Router<APIRequestContext>, logger: Logger) -> RouteTable {
        let table = RouteTable()
        router.add(middleware: RequestGuardMiddleware(routes: table, logger: logger))
        return table
    }

    /// The CORS allow-list of `coordinator.cors.allowed_origins`; add it to the router before any
    /// route (router middleware only wraps the routes added after it).
    public var cors: CORSAllowList<APIRequestContext> { CORSAllowList(origins: configuration.corsAllowedOrigins) }

    /// A router with only the user-facing API (tests, or a process that serves nothing else).
    public func makeRouter() -> Router<APIRequestContext> {
        let router = Router(context: APIRequestContext.self)
        let table = Self.addRequestGuard(to: router, logger: logger)
        router.add(middleware: cors)
        addRoutes(to: router)
        table.load(router.routes)
        return router
    }

    /// Middleware for operator endpoints: the configured admin token, or an access token of an admin user.
    public func adminMiddleware(adminToken: String?) -> AdminTokenMiddleware<APIRequestContext> {
        let tokens = self.tokens, users = self.users
        return AdminTokenMiddleware(token: adminToken) { presented in
            guard let id = await tokens.verify(presented), let user = try? await users.find(id: id) else { return false }
            return user.role == .admin
        }
    }
}
