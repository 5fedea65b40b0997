import FrameCore
import NIOCore
import NIOEmbedded
import Testing

@testable import FrameWire

/// The NIO handlers in an EmbeddedChannel: what the coordinator and node pipelines see.
@Suite struct HandlerTests {
    func makeChannel(maxFrameLength: Int = FrameCodec.defaultMaxFrameLength) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(MessageDecoder(maxFrameLength: maxFrameLength)))
        try channel.pipeline.syncOperations.addHandler(MessageToByteHandler(MessageEncoder()))
        return channel
    }

    @Test func decoderFedByteByByteYieldsEveryMessageInOrder() throws {
        let channel = try makeChannel()
        let messages = Fixture.smallSamples.map(\.message)
        for byte in messages.flatMap(Fixture.encoded) {
            try channel.writeInbound(ByteBuffer(bytes: [byte]))
        }
        var received: [Message] = []
        while let message = try channel.readInbound(as: Message.self) { received.append(message) }
        #expect(received == messages)
        #expect(try channel.finish().isClean)
    }

    @Test func decoderHandlesSeveralFramesInOneRead() throws {
        let channel = try makeChannel()
        let messages = Fixture.samples.map(\.message)
        var all = ByteBuffer()
        for message in messages { FrameCodec.encode(message, into: &all) }
        try channel.writeInbound(all)
        var received: [Message] = []
        while let message = try channel.readInbound(as: Message.self) { received.append(message) }
        #expect(received == messages)
        #expect(try channel.finish().isClean)
    }

    @Test func oversizedLengthFiresAnErrorBeforeAnyBodyArrives() throws {
        let channel = try makeChannel(maxFrameLength: 1024)
        // Only the 4-byte prefix is sent: the error must not wait for the body.
        #expect(throws: WireError(.oversized(length: 1025, limit: 1024))) {
            try channel.writeInbound(ByteBuffer(bytes: [0x00, 0x00, 0x04, 0x01]))
        }
        #expect(try channel.readInbound(as: Message.self) == nil)
        // Whatever follows is refused rather than buffered.
        #expect(throws: ByteToMessageDecoderError.self) {
            try channel.writeInbound(ByteBuffer(repeating: 0, count: 4096))
        }
        _ = try? channel.finish()
    }

    @Test func malformedFrameFiresAWireError() throws {
        let channel = try makeChannel()
        var bytes = Fixture.encoded(.drain(Drain(reason: "x")))
        bytes[5] = 0x01
        do {
            try channel.writeInbound(ByteBuffer(bytes: bytes))
            Issue.record("no error fired")
        } catch let error as WireError {
            #expect(error.code == .malformedFrame)
        }
        _ = try? channel.finish()
    }

    @Test func closingMidFrameReportsTruncation() throws {
        let channel = try makeChannel()
        let bytes = Fixture.encoded(.heartbeat(Heartbeat(sequence: 1)))
        try channel.writeInbound(ByteBuffer(bytes: bytes + bytes.prefix(7)))
        #expect(try channel.readInbound(as: Message.self) == .heartbeat(Heartbeat(sequence: 1)))
        channel.pipeline.fireChannelInactive()
        #expect(throws: WireError(.truncated, message: "connection closed with 7 bytes of an incomplete frame")) {
            try channel.throwIfErrorCaught()
        }
        _ = try? channel.finish()
    }

    @Test func encoderWritesTheCodecsBytes() throws {
        let channel = try makeChannel()
        for sample in Fixture.smallSamples {
            try channel.writeOutbound(sample.message)
            let written = try #require(try channel.readOutbound(as: ByteBuffer.self))
            #expect(Array(written.readableBytesView) == Fixture.encoded(sample.message), "\(sample.name)")
        }
        #expect(try channel.finish().isClean)
    }
}
