import NIOCore

/// Splits a byte stream into text lines (CRLF or LF, without the terminator),
/// refusing lines over 8 KiB: SMTP replies are short, a longer one is not SMTP.
struct LineDecoder: ByteToMessageDecoder {
    typealias InboundOut = String

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let newline = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) else {
            if buffer.readableBytes > 8192 { throw NotifyError("reply line longer than 8 KiB") }
            return .needMoreData
        }
        var line = buffer.readString(length: newline - buffer.readerIndex + 1) ?? ""
        while line.last == "\n" || line.last == "\r" { line.removeLast() }
        context.fireChannelRead(wrapInboundOut(line))
        return .continue
    }
}
