import FrameCore
import FrameWire
import Foundation
import FrameTestSupport
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import Testing
@testable import FrameNode
@testable import FrameObjectStore

/// The node's direct reads (LEASE_URL) against the real S3-compatible store scripts/test starts
/// (OpenStack Swift + s3api): ranged GETs of a presigned URL give the object's bytes, the store
/// refuses expired and tampered URLs and the node maps that (and an unreachable store) to the
/// protocol's codes, and a refused URL turns the source back to READ through the coordinator.
@Suite(.serialized, .timeLimit(.minutes(3))) struct DirectSourceLiveTests {
    struct Store {
        let client: S3Client
        let key: String
        let bytes: [UInt8]
    }

    /// A bucket of its own holding one object of `size` pseudo-random bytes; nil without a store.
    static func store(size: Int) async throws -> Store? {
        guard let client = try await S3LiveStore.client("DirectSourceLiveTests", stem: "direct", prefix: "p/",
                                                        requestTimeout: .seconds(120)) else { return nil }
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<size).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let key = "uploads/\(UUID().uuidString.lowercased())/input.mp4"
        try await client.putObject(key, body: ByteBuffer(bytes: bytes))
        return Store(client: client, key: key, bytes: bytes)
    }

    static func leaseURL(_ url: URL, expiresAt: Date, size: Int) -> LeaseURL {
        let ref = LeaseRef(jobID: UUID(), segment: 0, epoch: 1)
        let spec = SegmentSpec(index: 0, streamIndex: 0, timeBase: Rational(1, 1), decodeStartPTS: 0, startPTS: 0, endPTS: 1,
                               firstSample: 0, sampleCount: 1, rate: Rational(1, 1), originMicros: 0, keyframes: [])
        return LeaseURL(lease: Lease(lease: ref, leaseTTLMillis: 30_000, sourceSize: UInt64(size), formatHint: "mp4",
                                     segment: spec, options: OutputOptions()),
                        sourceURL: url.absoluteString, expiresAtMillis: UInt64(expiresAt.timeIntervalSince1970 * 1000))
    }

    /// What a coordinator would answer: READs served from `bytes`, and counted.
    final class FakeCoordinator: Sendable {
        let bytes: [UInt8]
        /// Where the READs are written from (a decode thread cannot await): run by ``serving(_:)``.
        let background = BackgroundWork()
        let router: ReadRouter
        let reads = NIOLockedValueBox(0)
        init(bytes: [UInt8]) {
            self.bytes = bytes
            router = ReadRouter(background: background)
        }
        /// Runs `body` while READs are being sent and answered.
        func serving<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await self.background.run() }
                defer { group.cancelAll() }
                return try await body()
            }
        }
        var outbox: LeaseOutbox {
            LeaseOutbox(send: { [self] message in
                guard case .read(let read) = message else { return }
                reads.withLockedValue { $0 += 1 }
                let start = Int(read.offset), end = min(bytes.count, start + Int(read.length))
                router.deliver(ReadData(requestID: read.requestID, offset: read.offset, data: ByteBuffer(bytes: bytes[start..<end])))
            }, background: background)
        }
    }

    /// Every byte of the source, read the way the decoder does (small reads, in order, then a few jumps).
    static func readAll(_ source: RemoteByteSource, size: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: size)
        var offset = 0
        while offset < size {
            let n = try out.withUnsafeMutableBytes { buffer in
                try source.read(at: Int64(offset), into: UnsafeMutableRawBufferPointer(rebasing: buffer[offset..<min(size, offset + 32_768)]))
            }
            #expect(n > 0)
            offset += n
        }
        return out
    }

    @Test func rangedReadsOfThePresignedURLGiveTheObjectsBytesWithoutARead() async throws {
        // Not a multiple of the 1 MiB chunk: the last chunk is short.
        let size = 3 * (1 << 20) + 12_345
        guard let store = try await Self.store(size: size) else { return }
        let signed = store.client.presignedGet(store.key, expires: 600)
        let leaseURL = Self.leaseURL(signed.url, expiresAt: signed.expiresAt, size: size)
        let direct = try DirectSource.make(leaseURL).get()
        let coordinator = FakeCoordinator(bytes: store.bytes)
        let source = RemoteByteSource(size: Int64(size), lease: leaseURL.lease.lease, router: coordinator.router,
                                      outbox: coordinator.outbox, direct: direct)
        let (all, jumps) = try await coordinator.serving { try await Task.detached {  // blocking reads: off the cooperative pool

            let all = try Self.readAll(source, size: size)
            var jumps: [[UInt8]] = []
            for offset in [size - 10, 5, (1 << 20) - 3, 2 * (1 << 20) + 77] {
                // A read may stop at a chunk's end (ByteSource's contract): read on until 10 bytes or EOF.
                var piece: [UInt8] = []
                while piece.count < 10 {
                    var buffer = [UInt8](repeating: 0, count: 10 - piece.count)
                    let n = try buffer.withUnsafeMutableBytes { try source.read(at: Int64(offset + piece.count), into: $0) }
                    if n == 0 { break }
                    piece += buffer[..<n]
                }
                jumps.append(piece)
            }
            return (all, jumps)
        }.value }
        #expect(all == store.bytes)
        #expect(jumps[0] == Array(store.bytes[(size - 10)...]))
        #expect(jumps[1] == Array(store.bytes[5..<15]))
        #expect(jumps[2] == Array(store.bytes[((1 << 20) - 3)..<((1 << 20) + 7)]))
        #expect(jumps[3] == Array(store.bytes[(2 * (1 << 20) + 77)..<(2 * (1 << 20) + 87)]))
        #expect(coordinator.reads.withLockedValue { $0 } == 0, "no READ went to the coordinator")
        #expect(source.bytesFetchedDirect == source.bytesFetched)
        #expect(source.bytesFetchedDirect >= Int64(size))
        #expect(source.readsDirect)
        #expect(source.fallbackCode == nil)
    }

    @Test func anExpiredURLIsRefusedByTheStoreAsObjectStoreRejected() async throws {
        // Signed two hours ago for one minute: expired by the store's clock, not by the node's check.
        guard let store = try await Self.store(size: 4096) else { return }
        let signer = try S3Client(configuration: store.client.configuration, now: { Date().addingTimeInterval(-7200) })
        let url = signer.presignedGetURL(store.key, expires: 60)
        let direct = DirectSource(reader: try PresignedRangeReader(url: url.absoluteString), expiresAt: .distantFuture)
        let error = await Self.failure { try direct.read(offset: 0, length: 4096) }
        #expect(error?.code == .objectStoreRejected, "\(String(describing: error))")
        // And a LEASE_URL that says it expired is not used at all.
        guard case .failure(let why) = DirectSource.make(Self.leaseURL(url, expiresAt: Date().addingTimeInterval(-1), size: 4096)) else {
            Issue.record("an expired LEASE_URL was used"); return
        }
        #expect(why.code == .objectStoreRejected)
    }

    @Test func aTamperedURLIsRefusedByTheStoreAsObjectStoreRejected() async throws {
        guard let store = try await Self.store(size: 4096) else { return }
        let url = store.client.presignedGetURL(store.key, expires: 600).absoluteString
        // Another object's key under the same signature, and a flipped signature digit.
        let otherKey = url.replacingOccurrences(of: "input.mp4", with: "input.mkv")
        let signature = try #require(url.range(of: "X-Amz-Signature=")).upperBound
        var flipped = url
        flipped.replaceSubrange(signature...signature, with: url[signature] == "0" ? "1" : "0")
        for tampered in [otherKey, flipped] {
            let direct = DirectSource(reader: try PresignedRangeReader(url: tampered), expiresAt: .distantFuture)
            let error = await Self.failure { try direct.read(offset: 0, length: 100) }
            #expect(error?.code == .objectStoreRejected, "\(String(describing: error))")
        }
        // The untampered URL works, so the refusals above are the store's verdict on the changes.
        let good = DirectSource(reader: try PresignedRangeReader(url: url), expiresAt: .distantFuture)
        let bytes = try await Task.detached { try good.read(offset: 100, length: 50) }.value
        #expect(bytes == Array(store.bytes[100..<150]))
    }

    @Test func anUnreachableStoreIsObjectStoreUnavailable() async throws {
        // A port nothing listens on (bound, then closed).
        let port = freePort()
        let direct = DirectSource(reader: try PresignedRangeReader(url: "http://127.0.0.1:\(port)/b/k?X-Amz-Signature=0", timeout: .seconds(5)),
                                  expiresAt: .distantFuture)
        let error = await Self.failure { try direct.read(offset: 0, length: 10) }
        #expect(error?.code == .objectStoreUnavailable, "\(String(describing: error))")
        #expect(ErrorCode.objectStoreUnavailable.isRetryable)
    }

    @Test func aRefusedURLFallsBackToReadThroughTheCoordinator() async throws {
        let size = (1 << 20) + 500
        guard let store = try await Self.store(size: size) else { return }
        var url = store.client.presignedGetURL(store.key, expires: 600).absoluteString
        url = url.replacingOccurrences(of: "input.mp4", with: "other.mp4")
        let direct = DirectSource(reader: try PresignedRangeReader(url: url), expiresAt: .distantFuture)
        let coordinator = FakeCoordinator(bytes: store.bytes)
        let ref = LeaseRef(jobID: UUID(), segment: 0, epoch: 1)
        let source = RemoteByteSource(size: Int64(size), lease: ref, router: coordinator.router, outbox: coordinator.outbox, direct: direct)
        let all = try await coordinator.serving { try await Task.detached { try Self.readAll(source, size: size) }.value }
        #expect(all == store.bytes)
        #expect(!source.readsDirect)
        #expect(source.fallbackCode == .objectStoreRejected)
        #expect(source.bytesFetchedDirect == 0)
        #expect(coordinator.reads.withLockedValue { $0 } >= 2)
    }

    @Test func rangedReadsWorkOverHTTPS() async throws {
        let size = (1 << 20) + 4321
        guard let store = try await Self.store(size: size), let storeURL = store.client.configuration.endpoint.port else { return }
        // A TLS front for the store (a certificate for localhost, made here), signed for its own address.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ff-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let cert = dir.appendingPathComponent("cert.pem").path, key = dir.appendingPathComponent("key.pem").path
        let made = try runCommand(URL(fileURLWithPath: "/usr/bin/openssl"), [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
            "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost", "-days", "1"])
        try #require(made.status == 0, "\(made.output)")
        let server = try NIOSSLContext(configuration: .makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile(cert).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))))
        let front = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: server))
                    return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        let port = try #require(front.channel.localAddress?.port)
        var configuration = store.client.configuration
        configuration.endpoint = URL(string: "https://localhost:\(port)")!
        let signed = try S3Client(configuration: configuration).presignedGet(store.key, expires: 600)
        #expect(signed.url.scheme == "https")
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(cert))
        let reader = try PresignedRangeReader(url: signed.url.absoluteString, timeout: .seconds(20), tlsConfiguration: tls)
        let source = RemoteByteSource(size: Int64(size), lease: LeaseRef(jobID: UUID(), segment: 0, epoch: 1),
                                      router: ReadRouter(background: BackgroundWork()),
                                      outbox: LeaseOutbox(send: nil, background: BackgroundWork()),
                                      direct: DirectSource(reader: reader, expiresAt: signed.expiresAt))
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask {
                // Relays each TLS connection to the store in plain HTTP (one exchange per connection).
                try await front.executeThenClose { inbound in
                    for try await connection in inbound {
                        let upstream = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                            .connect(host: "127.0.0.1", port: storeURL) { channel in
                                channel.eventLoop.makeCompletedFuture {
                                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                                }
                            }
                        try await connection.executeThenClose { clientIn, clientOut in
                            try await upstream.executeThenClose { storeIn, storeOut in
                                // Whichever side ends first (a refused handshake ends the client's) ends both.
                                await withThrowingTaskGroup(of: Void.self) { relay in
                                    relay.addTask { for try await piece in clientIn { try await storeOut.write(piece) } }
                                    relay.addTask { for try await piece in storeIn { try await clientOut.write(piece) } }
                                    _ = try? await relay.next()
                                    relay.cancelAll()
                                }
                            }
                        }
                    }
                }
            }
            let all = try await Task.detached { try Self.readAll(source, size: size) }.value
            #expect(all == store.bytes)
            #expect(source.readsDirect && source.fallbackCode == nil)
            #expect(source.bytesFetchedDirect == Int64(size))
            // A client that does not trust the front's certificate is refused before any byte.
            let untrusting = DirectSource(reader: try PresignedRangeReader(url: signed.url.absoluteString), expiresAt: signed.expiresAt)
            let refused = await Self.failure { try untrusting.read(offset: 0, length: 10) }
            #expect(refused?.code == .objectStoreUnavailable, "\(String(describing: refused))")
            try await front.channel.close()
        }
    }

    /// The error a blocking read throws, run off the cooperative pool (as decode threads are).
    static func failure(_ body: @escaping @Sendable () throws -> [UInt8]) async -> FrameFlowError? {
        await Task.detached { () -> FrameFlowError? in
            do {
                _ = try body()
                return nil
            } catch {
                return (error as? FrameFlowError) ?? FrameFlowError(.internalError, "not a FrameFlowError: \(error)")
            }
        }.value
    }
}
