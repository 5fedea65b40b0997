import Foundation
import Synchronization
import Testing
import FrameCore
@testable import FrameMedia

/// A source that answers every read with a short, odd-sized piece (as a network fetch
/// might) and counts what it served.
final class ChoppySource: ByteSource {
    let inner: FileByteSource
    let served = Atomic<Int64>(0)
    let calls = Atomic<Int>(0)
    var size: Int64 { inner.size }
    init(path: String) throws { inner = try FileByteSource(path: path) }

    func read(at offset: Int64, into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let call = calls.add(1, ordering: .relaxed).newValue
        let piece = min(buffer.count, [1, 7, 333, 4093, 997, 13][call % 6])
        let n = try inner.read(at: offset, into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<piece]))
        served.add(Int64(n), ordering: .relaxed)
        return n
    }
}

/// A source whose reads fail, as a dropped connection would.
struct FailingSource: ByteSource {
    struct Gone: Error {}
    let inner: FileByteSource
    let failAfter: Int64
    var size: Int64 { inner.size }
    func read(at offset: Int64, into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        if offset >= failAfter { throw Gone() }
        return try inner.read(at: offset, into: buffer)
    }
}

@Suite("Byte sources")
struct ByteSourceTests {
    @Test("short odd-sized reads give identical frames, and the bytes read are counted")
    func choppyReadsMatch() throws {
        let dir = try Fixtures.makeDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = try conformanceCases[0].make(in: dir)
        let reference = try Fixtures.ourDigests(path, rate: Rational(5, 2), segmentSeconds: 1)
        let choppy = try ChoppySource(path: path)
        let result = try Fixtures.ourDigests(path, rate: Rational(5, 2), segmentSeconds: 1, reuseDecoder: true, source: choppy)
        #expect(result.digests == reference.digests)
        #expect(result.stats.bytesRead > 0)
        // Everything the decoder read came through the source (the rest is the open).
        #expect(result.stats.bytesRead <= choppy.served.load(ordering: .relaxed))
        #expect(choppy.calls.load(ordering: .relaxed) > 100)
        // Probing through the choppy source finds the same index.
        #expect(try MediaProbe.probe(source: ChoppySource(path: path), formatHint: "mp4") == MediaProbe.probe(path: path))
    }

    @Test("a failing source surfaces as IO_ERROR")
    func failingSource() throws {
        let dir = try Fixtures.makeDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = try conformanceCases[1].make(in: dir)
        let file = try FileByteSource(path: path)
        #expect { try MediaProbe.probe(source: FailingSource(inner: file, failAfter: file.size / 2)) } throws: {
            ($0 as? MediaError)?.code == .ioError
        }
        #expect { try MediaProbe.probe(source: FailingSource(inner: file, failAfter: 0)) } throws: {
            ($0 as? MediaError)?.code == .ioError
        }
    }
}
