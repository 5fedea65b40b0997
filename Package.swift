// swift-tools-version:6.1
//
// FrameFlow: a distributed video frame-extraction cluster.
//
// One module per concern; the folder tree under Sources/ mirrors this list.
// C libraries are reached only through the thin `C*` system-library targets,
// each imported by exactly one Swift wrapper module.
import PackageDescription

let package = Package(
    name: "FrameFlow",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "frameflow-coordinator", targets: ["frameflow-coordinator"]),
        .executable(name: "frameflow-node", targets: ["frameflow-node"]),
        .executable(name: "frameflow", targets: ["frameflow"]),
        .executable(name: "frameflow-sim", targets: ["frameflow-sim"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "5.0.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth.git", from: "2.5.0"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.7.1"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        // MARK: C libraries (system-library targets, pkg-config)
        .systemLibrary(
            name: "CFFmpeg",
            path: "Sources/CSystem/CFFmpeg",
            pkgConfig: "libavformat",
            providers: [.apt(["libavformat-dev", "libavcodec-dev", "libavutil-dev", "libswscale-dev"])]
        ),
        .systemLibrary(
            name: "CLibZip",
            path: "Sources/CSystem/CLibZip",
            pkgConfig: "libzip",
            providers: [.apt(["libzip-dev"])]
        ),
        /// libdeflate (zlib streams, CRC-32) for the PNG writer in FrameMedia.
        .systemLibrary(
            name: "CLibDeflate",
            path: "Sources/CSystem/CLibDeflate",
            providers: [.apt(["libdeflate-dev"])]
        ),
        /// Linux calls glibc hides behind _GNU_SOURCE (sync_file_range), for upload writes.
        .systemLibrary(name: "CLinuxIO", path: "Sources/CSystem/CLinuxIO"),
        .systemLibrary(
            name: "CLibPQ",
            path: "Sources/CSystem/CLibPQ",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"])]
        ),

        // MARK: Libraries, one concern each
        /// Shared vocabulary: error codes, rationals, segment specs. No dependencies.
        .target(name: "FrameCore"),
        /// The node protocol: message types and the length-prefixed frame codec.
        .target(name: "FrameWire", dependencies: [
            "FrameCore",
            .product(name: "NIOCore", package: "swift-nio"),
        ]),
        /// The coordinator's side of one node session as a value-type state machine (handshake and
        /// message routing, no sockets), apart from FrameCoordinator so the fuzzers can link it alone.
        .target(name: "FrameSession", dependencies: ["FrameCore", "FrameWire"]),
        /// FFmpeg wrapper: probe, keyframe index, sample clock, planner, segment decoder, encoders.
        .target(name: "FrameMedia", dependencies: ["FrameCore", "CFFmpeg", "CLibDeflate"]),
        /// libzip wrapper: ZIP assembly.
        .target(name: "FrameArchive", dependencies: ["FrameCore", "CLibZip"]),
        /// In-process pipeline (plan, decode segments in parallel, archive): `frameflow extract`.
        .target(name: "FrameExtract", dependencies: ["FrameCore", "FrameMedia", "FrameArchive"]),
        /// libpq wrapper: connection pool, migrations, queries.
        .target(name: "FrameStore", dependencies: [
            "FrameCore", "CLibPQ",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),
        /// cluster.yaml, certificates, TLS contexts and the NIO pipeline both sides share.
        .target(name: "FrameCluster", dependencies: [
            "FrameCore", "FrameWire",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "NIOExtras", package: "swift-nio-extras"),
            .product(name: "X509", package: "swift-certificates"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "SwiftASN1", package: "swift-asn1"),
            .product(name: "Yams", package: "Yams"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        /// The user-facing HTTP API: accounts, JWT auth, streaming uploads, job views, downloads.
        /// Knows nothing of nodes, FFmpeg or leases: it reaches them through two protocols.
        .target(name: "FrameAPI", dependencies: [
            "FrameCore", "FrameStore", "FrameArchive", "CLinuxIO",
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HummingbirdCore", package: "hummingbird"),
            .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
            .product(name: "HTTPTypes", package: "swift-http-types"),
            .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
            .product(name: "JWTKit", package: "jwt-kit"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        /// The documents the coordinator serves as they are: the web app (hand-written HTML, CSS, ES
        /// modules) and the API's OpenAPI contract (`openapi.yaml`, also as JSON), as resources, with ETags.
        .target(name: "FrameWeb", dependencies: [
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HTTPTypes", package: "swift-http-types"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "Yams", package: "Yams"),
        ], resources: [.copy("Assets"), .copy("Contract")]),
        /// The coordinator service: HTTP API, node sessions, scheduler.
        .target(name: "FrameCoordinator", dependencies: [
            "FrameCore", "FrameWire", "FrameSession", "FrameCluster", "FrameStore", "FrameMedia", "FrameArchive", "FrameAPI", "FrameNotify", "FrameWeb",
            "FrameObjectStore",
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "CoreMetrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        /// The node agent: connect, register, run leases in slots, heartbeat, reconnect.
        .target(name: "FrameNode", dependencies: [
            "FrameCore", "FrameWire", "FrameCluster", "FrameMedia", "FrameObjectStore",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        /// Simulated nodes for load tests: real sessions (the node agent), canned decode work.
        .target(name: "FrameSimulator", dependencies: [
            "FrameCore", "FrameWire", "FrameCluster", "FrameNode",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        /// Job notifications: a small SMTP client and a signed-webhook HTTP/1.1 client over SwiftNIO.
        .target(name: "FrameNotify", dependencies: [
            "FrameCore",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        /// S3-compatible object storage: AWS Signature Version 4 and a small S3 client over SwiftNIO.
        .target(name: "FrameObjectStore", dependencies: [
            "FrameCore",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        /// HTTP client for the API (used by the `frameflow` CLI).
        .target(name: "FrameClient", dependencies: [
            "FrameCore", .product(name: "Crypto", package: "swift-crypto"),
            // The event stream (`watch`): URLSession on Linux spins on a long-lived quiet response.
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
        ]),

        // MARK: Executables: parse arguments, load config, start a service
        .executableTarget(name: "frameflow-coordinator", dependencies: [
            "FrameCoordinator", "FrameCluster", "FrameStore",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "frameflow-node", dependencies: [
            "FrameNode", "FrameCluster",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "frameflow-sim", dependencies: [
            "FrameSimulator", "FrameCluster",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .executableTarget(name: "frameflow", dependencies: [
            "FrameCluster", "FrameExtract", "FrameClient", "FrameCore",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        // MARK: Fuzzing (Fuzz/, scripts/fuzz)
        /// The invariants the fuzzers check (frame decoder, node session), as throwing functions that the
        /// fuzz targets trap on and the unit tests replay the committed corpus through.
        .target(name: "FrameFuzzChecks", dependencies: [
            "FrameCore", "FrameWire", "FrameSession",
            .product(name: "NIOCore", package: "swift-nio"),
        ], path: "Fuzz/FrameFuzzChecks"),

        // MARK: Tests, one target per module, plus process-level integration tests
        .testTarget(name: "FrameCoreTests", dependencies: ["FrameCore"]),
        .testTarget(name: "FrameWireTests", dependencies: [
            "FrameWire", "FrameCore", "FrameFuzzChecks",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOEmbedded", package: "swift-nio"),
            .product(name: "PropertyBased", package: "swift-property-based"),
        ]),
        .testTarget(name: "FrameSessionTests", dependencies: ["FrameSession", "FrameWire", "FrameCore", "FrameFuzzChecks"]),
        .testTarget(name: "FrameMediaTests", dependencies: [
            "FrameMedia", "FrameCore",
            .product(name: "PropertyBased", package: "swift-property-based"),
        ]),
        // FrameMedia for its CRC-32 (libdeflate), which the slice writer is handed.
        .testTarget(name: "FrameArchiveTests", dependencies: ["FrameArchive", "FrameCore", "FrameMedia"]),
        .testTarget(name: "FrameExtractTests", dependencies: ["FrameExtract", "FrameMedia", "FrameCore", "FrameTestSupport"]),
        .testTarget(name: "FrameStoreTests", dependencies: ["FrameStore", "FrameCore"]),
        .testTarget(name: "FrameAPITests", dependencies: [
            "FrameAPI", "FrameStore", "FrameCore",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HummingbirdTesting", package: "hummingbird"),
            .product(name: "JWTKit", package: "jwt-kit"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOEmbedded", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "HTTPTypes", package: "swift-http-types"),
            .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
        ]),
        .testTarget(name: "FrameClusterTests", dependencies: [
            "FrameCluster", "FrameWire", "FrameCore",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOEmbedded", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
        ]),
        /// Helpers shared by the test targets: child processes, fixtures, per-test databases, the live object store.
        .target(name: "FrameTestSupport", dependencies: ["FrameObjectStore"], path: "Tests/Support"),
        .testTarget(name: "FrameCoordinatorTests", dependencies: [
            "FrameTestSupport", "FrameObjectStore",
            "FrameCoordinator", "FrameNode", "FrameCluster", "FrameWire", "FrameCore", "FrameStore", "FrameExtract", "FrameAPI", "FrameNotify", "FrameSession",
            "FrameWeb",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HummingbirdTesting", package: "hummingbird"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        /// The node agent's pieces (connection state machine, lease runner, decoder pool).
        .testTarget(name: "FrameNodeTests", dependencies: [
            "FrameTestSupport", "FrameNode", "FrameMedia", "FrameWire", "FrameCore", "FrameObjectStore", "FrameCluster",
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
        ]),
        /// The simulator's canned images and decode model.
        .testTarget(name: "FrameSimulatorTests", dependencies: [
            "FrameSimulator", "FrameCoordinator", "FrameWire", "FrameCore",
            .product(name: "NIOCore", package: "swift-nio"),
        ]),
        .testTarget(name: "FrameNotifyTests", dependencies: ["FrameNotify"]),
        /// The client's value types (the server-sent events parser).
        .testTarget(name: "FrameClientTests", dependencies: ["FrameClient"]),
        .testTarget(name: "FrameObjectStoreTests", dependencies: [
            "FrameObjectStore", "FrameCore", "FrameTestSupport",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "Crypto", package: "swift-crypto"),
        ], exclude: ["Fixtures"]),
        .testTarget(name: "IntegrationTests", dependencies: ["FrameCluster", "FrameCore", "FrameClient", "FrameTestSupport", "FrameObjectStore"]),
    ],
    swiftLanguageModes: [.v6]
)

// The fuzz driver links only when built with -sanitize=fuzzer (it calls libFuzzer, the compiler's runtime), so it
// is part of the package only while scripts/fuzz sets FRAMEFLOW_FUZZ; the ordinary build never sees it.
if Context.environment["FRAMEFLOW_FUZZ"] != nil {
    package.targets += [
        /// The declaration of libFuzzer's driver entry point (the library comes with -sanitize=fuzzer).
        .systemLibrary(name: "CLibFuzzer", path: "Fuzz/CLibFuzzer"),
        /// `frameflow-fuzz frame-decoder|node-session [libFuzzer options]`.
        .executableTarget(name: "frameflow-fuzz", dependencies: ["FrameFuzzChecks", "CLibFuzzer"], path: "Fuzz/frameflow-fuzz"),
    ]
}
