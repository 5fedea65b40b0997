#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import NIOCore

/// A push parser for `multipart/form-data` bodies (RFC 7578 over RFC 2046)
/// that turns arbitrary chunks of the request body into part events without
/// ever holding more than one chunk plus a delimiter's length.
///
/// Written for uploads of several gigabytes: the body of a part is found by
/// `memchr` for the delimiter's first byte and one `memcmp` per candidate, so
/// video bytes pass through at memory speed and leave as slices of the chunk
/// they arrived in (no per-byte work, no copies). multipart-kit, which this
/// replaces, split the body at every CR and ran at under 1 MB/s in debug
/// builds. Header blocks are limited to ``maxHeaderBytes`` so a body without
/// blank lines cannot grow memory.
struct MultipartStreamParser {
    /// What the parser found in the bytes fed so far, in order.
    enum Event: Equatable {
        /// A part starts; header names are lower-cased, values trimmed.
        case partBegin(headers: [String: String])
        /// The next bytes of the current part's body (any number of these per part).
        case body(ByteBuffer)
        /// The current part's body is complete.
        case partEnd
    }

    /// Why a body is not valid multipart.
    enum ParseError: Error, Equatable, CustomStringConvertible {
        case headerTooLarge
        case malformedHeader
        case malformedDelimiter
        /// The body ended before the closing delimiter.
        case truncated
        /// A part header holds a control character (``InputText``; a tab is allowed as whitespace).
        case controlCharacter(Unicode.Scalar)

        var description: String {
            switch self {
            case .headerTooLarge: "a part's headers are larger than \(MultipartStreamParser.maxHeaderBytes) bytes"
            case .malformedHeader: "a part header is not 'Name: value'"
            case .malformedDelimiter: "a boundary is not followed by CRLF or '--'"
            case .truncated: "the body ended before its closing boundary"
            case .controlCharacter(let c): "a part header contains the control character \(InputText.name(c))"
            }
        }
    }

    private enum State {
        /// Skipping the preamble until the first delimiter.
        case preamble
        /// Just after a delimiter: `--` ends the body, CRLF starts a part.
        case afterDelimiter
        case headers
        case body
        case done
    }

    /// Largest header block accepted for one part.
    static let maxHeaderBytes = 16 * 1024

    /// The blank line that ends a part's header block.
    private static let headerEnd: [UInt8] = [13, 10, 13, 10]

    /// `CRLF--boundary`: what ends a part's body.
    private let delimiter: [UInt8]
    private var state = State.preamble
    /// Unconsumed bytes: at most one chunk plus a possible partial delimiter.
    private var pending: ByteBuffer

    /// `boundary` is the `boundary` parameter of the request's content type.
    init(boundary: String) {
        delimiter = Array("\r\n--\(boundary)".utf8)
        // The first delimiter may open the body without a preceding CRLF; a
        // virtual CRLF lets one search handle both cases.
        pending = ByteBuffer(bytes: [13, 10])
    }

    /// Whether the closing delimiter has been seen.
    var isComplete: Bool {
        if case .done = state { return true }
        return false
    }

    /// Parses `chunk` and returns the events it completes.
    mutating func feed(_ chunk: ByteBuffer) throws -> [Event] {
        if pending.readableBytes == 0 {
            pending = chunk
        } else {
            pending.writeImmutableBuffer(chunk)
        }
        var events: [Event] = []
        while try step(&events) {}
        if pending.readerIndex > 0, pending.readableBytes <= delimiter.count + 4 {
            pending.discardReadBytes()
        }
        return events
    }

    /// Declares the end of the body; throws if it stopped before the closing delimiter.
    func finish() throws {
        guard isComplete else { throw ParseError.truncated }
    }

    /// Consumes what it can of `pending`; false when more input is needed.
    private mutating func step(_ events: inout [Event]) throws -> Bool {
        switch state {
        case .preamble:
            switch find(delimiter) {
            case .found(let at):
                pending.moveReaderIndex(forwardBy: at + delimiter.count)
                state = .afterDelimiter
                return true
            case .partial(let at):
                pending.moveReaderIndex(forwardBy: at)
                return false
            case .absent:
                pending.moveReaderIndex(forwardBy: pending.readableBytes)
                return false
            }

        case .afterDelimiter:
            // Transport padding (spaces, tabs) may follow a delimiter.
            while let byte = pending.getInteger(at: pending.readerIndex, as: UInt8.self), byte == 32 || byte == 9 {
                pending.moveReaderIndex(forwardBy: 1)
            }
            guard pending.readableBytes >= 2, let pair = pending.getBytes(at: pending.readerIndex, length: 2) else { return false }
            if pair == [45, 45] {  // "--": close delimiter; the epilogue is ignored.
                pending.moveReaderIndex(forwardBy: pending.readableBytes)
                state = .done
                return false
            }
            guard pair == [13, 10] else { throw ParseError.malformedDelimiter }
            pending.moveReaderIndex(forwardBy: 2)
            state = .headers
            return true

        case .headers:
            if pending.readableBytes >= 2, pending.getBytes(at: pending.readerIndex, length: 2) == [13, 10] {
                // A part without headers: the blank line follows the delimiter's CRLF at once.
                pending.moveReaderIndex(forwardBy: 2)
                events.append(.partBegin(headers: [:]))
                state = .body
                return true
            }
            guard case .found(let end) = find(Self.headerEnd), end <= Self.maxHeaderBytes else {
                if pending.readableBytes > Self.maxHeaderBytes { throw ParseError.headerTooLarge }
                return false
            }
            let block = pending.readString(length: end) ?? ""
            pending.moveReaderIndex(forwardBy: Self.headerEnd.count)
            events.append(.partBegin(headers: try Self.parseHeaders(block)))
            state = .body
            return true

        case .body:
            switch find(delimiter) {
            case .found(let at):
                if at > 0, let bytes = pending.readSlice(length: at) { events.append(.body(bytes)) }
                pending.moveReaderIndex(forwardBy: delimiter.count)
                events.append(.partEnd)
                state = .afterDelimiter
                return true
            case .partial(let at):
                if at > 0, let bytes = pending.readSlice(length: at) { events.append(.body(bytes)) }
                return false
            case .absent:
                if let bytes = pending.readSlice(length: pending.readableBytes), bytes.readableBytes > 0 {
                    events.append(.body(bytes))
                }
                return false
            }

        case .done:
            pending.moveReaderIndex(forwardBy: pending.readableBytes)
            return false
        }
    }

    private enum Match {
        /// The needle starts `at` bytes into the readable bytes.
        case found(Int)
        /// The readable bytes end with a prefix of the needle starting at `at`; need more input.
        case partial(Int)
        case absent
    }

    /// Finds `needle` in the readable bytes: `memchr` for its first byte, then a compare.
    private func find(_ needle: [UInt8]) -> Match {
        pending.withUnsafeReadableBytes { raw -> Match in
            guard let base = raw.baseAddress, raw.count > 0 else { return .absent }
            let first = Int32(needle[0])
            var offset = 0
            while offset < raw.count {
                guard let hit = memchr(base + offset, first, raw.count - offset) else { return .absent }
                let at = base.distance(to: UnsafeRawPointer(hit))
                let available = raw.count - at
                let compared = min(available, needle.count)
                let equal = needle.withUnsafeBytes { memcmp(base + at, $0.baseAddress!, compared) == 0 }
                if equal { return compared == needle.count ? .found(at) : .partial(at) }
                offset = at + 1
            }
            return .absent
        }
    }

    /// Parses `Name: value` lines (no folding, which RFC 7578 forbids).
    static func parseHeaders(_ block: String) throws -> [String: String] {
        // CR and LF only as the line breaks split on below; a NUL in a file name would reach libpq.
        if let bad = block.unicodeScalars.first(where: { InputText.isRefused($0) && $0 != "\t" && $0 != "\r" && $0 != "\n" }) {
            throw ParseError.controlCharacter(bad)
        }
        var headers: [String: String] = [:]
        for line in block.split(separator: "\r\n", omittingEmptySubsequences: true) {
            guard let colon = line.firstIndex(of: ":") else { throw ParseError.malformedHeader }
            let name = line[..<colon].trimmingCharacters(in: .whitespaces).lowercased()
            guard !name.isEmpty else { throw ParseError.malformedHeader }
            headers[name] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return headers
    }
}
