import FrameCore
import NIOCore
import PropertyBased
import Testing

@testable import FrameWire

/// Random and mutated input never crashes or hangs the decoder: each call
/// returns a message, nil (needs more bytes) or a typed WireError, and every
/// frame it accepts re-encodes to exactly the bytes it consumed.
@Suite(.timeLimit(.minutes(2))) struct FuzzTests {
    /// Decodes frames from `bytes` until the decoder waits or fails, checking canonical re-encoding.
    static func drain(_ bytes: [UInt8], maxFrameLength: Int = FrameCodec.defaultMaxFrameLength) {
        var buffer = ByteBuffer(bytes: bytes)
        // Each successful decode consumes at least 6 bytes, so this terminates; the bound only guards a regression.
        for _ in 0...(bytes.count / 6 + 1) {
            let before = buffer.readerIndex
            do {
                guard let message = try FrameCodec.decodeFrame(from: &buffer, maxFrameLength: maxFrameLength) else {
                    #expect(buffer.readerIndex == before, "waiting must not consume")
                    return
                }
                let consumed = Array(bytes[before..<buffer.readerIndex])
                #expect(Fixture.encoded(message) == consumed, "accepted frame must re-encode identically")
            } catch {
                // Typed by the signature; check the mapping is one of the three wire codes.
                #expect([ErrorCode.malformedFrame, .frameTooLarge, .unknownMessageType].contains(error.code))
                return
            }
        }
        Issue.record("decoder did not stop on \(bytes.count) bytes")
    }

    @Test func randomBytes() async {
        await propertyCheck(count: 2000, input: Gen<UInt8>.value(in: 0...255).array(of: 0...300)) { bytes in
            Self.drain(bytes)
        }
    }

    @Test func randomBodiesWithAValidHeader() async {
        // A plausible length and a known type with zero flags gets past the framing checks into
        // the payload decoders, which random bytes alone rarely reach.
        let types = MessageType.allCases.map(\.rawValue)
        await propertyCheck(count: 3000, input: Gen.int(in: 0...(types.count - 1)), Gen<UInt8>.value(in: 0...255).array(of: 0...200)) { index, payload in
            let type = types[index]
            let length = UInt32(2 + payload.count)
            let frame = withUnsafeBytes(of: length.bigEndian, Array.init) + [type, 0] + payload
            Self.drain(frame)
            var body = ByteBuffer(bytes: [type, 0] + payload)
            do {
                let message = try FrameCodec.decode(body: &body)
                #expect(message.type.rawValue == type)
            } catch let error as WireError {
                #expect(error.code != .frameTooLarge)
            } catch {
                Issue.record("untyped error \(error)")
            }
        }
    }

    enum Mutation: Sendable, CustomStringConvertible {
        case flipBit(position: Int, bit: Int)
        case truncate(keep: Int)
        case setLength(UInt32)
        case insert(position: Int, byte: UInt8)
        case delete(position: Int)
        case setByte(position: Int, byte: UInt8)

        var description: String {
            switch self {
            case .flipBit(let p, let b): "flip bit \(b) of byte \(p)"
            case .truncate(let k): "keep \(k) bytes"
            case .setLength(let l): "length := \(l)"
            case .insert(let p, let b): "insert \(b) at \(p)"
            case .delete(let p): "delete byte \(p)"
            case .setByte(let p, let b): "byte \(p) := \(b)"
            }
        }

        func apply(to bytes: [UInt8]) -> [UInt8] {
            var out = bytes
            guard !out.isEmpty else { return out }
            switch self {
            case .flipBit(let p, let b): out[p % out.count] ^= UInt8(1) << (b % 8)
            case .truncate(let k): out = Array(out.prefix(k % out.count))
            case .setLength(let l):
                guard out.count >= 4 else { break }  // an earlier truncation removed the prefix
                out.replaceSubrange(0..<4, with: withUnsafeBytes(of: l.bigEndian, Array.init))
            case .insert(let p, let b): out.insert(b, at: p % (out.count + 1))
            case .delete(let p): out.remove(at: p % out.count)
            case .setByte(let p, let b): out[p % out.count] = b
            }
            return out
        }
    }

    /// One of the six mutation kinds with random parameters.
    static let oneMutation = Generator<Mutation, Shrink.None<Mutation>>(run: { rng in
        let position = Int.random(in: 0...600, using: &rng)
        let byte = UInt8.random(in: 0...255, using: &rng)
        switch Int.random(in: 0...5, using: &rng) {
        case 0: return .flipBit(position: position, bit: Int.random(in: 0...7, using: &rng))
        case 1: return .truncate(keep: position)
        case 2:
            // Lengths near the real one are the interesting ones; sometimes anything.
            let near = Bool.random(using: &rng)
            return .setLength(near ? UInt32.random(in: 0...700, using: &rng) : UInt32.random(in: 0...UInt32.max, using: &rng))
        case 3: return .insert(position: position, byte: byte)
        case 4: return .delete(position: position)
        default: return .setByte(position: position, byte: byte)
        }
    })

    static let mutation = oneMutation.array(of: 1...4)

    @Test func mutatedValidFrames() async {
        let frames = Fixture.smallSamples.map { Fixture.encoded($0.message) }
        await propertyCheck(count: 3000, input: Gen.int(in: 0...(frames.count - 1)), Self.mutation) { index, mutations in
            let frame = frames[index]
            let mutated = mutations.reduce(frame) { $1.apply(to: $0) }
            Self.drain(mutated)
            // The same bytes followed by a valid frame: still no crash, and no hang.
            Self.drain(mutated + frame)
        }
    }
}
