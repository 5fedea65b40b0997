import FrameClient
import Testing

/// The `text/event-stream` parser `frameflow watch` reads the server's push with.
@Suite struct EventStreamParserTests {
    /// The coordinator's stream as it writes it: retry hint, events with ids, keep-alive comments.
    @Test func readsTheCoordinatorsStream() {
        var parser = EventStreamParser()
        let text = "retry: 2000\n\nid: 7\nevent: job\ndata: {\"id\":\"a\"}\n\n: keep-alive\n\nevent: reset\ndata: {}\n\n"
        let events = parser.feed(Array(text.utf8))
        #expect(events == [
            ServerEvent(name: "job", data: "{\"id\":\"a\"}", lastEventID: "7"),
            ServerEvent(name: "reset", data: "{}", lastEventID: "7"),
        ])
        #expect(parser.retry == 2000)
        #expect(parser.lastEventID == "7")
    }

    /// Chunks cut anywhere (inside a field, between CR and LF) give the same events as one chunk.
    @Test func chunksCutAnywhereGiveTheSameEvents() {
        let text = "id: 1\r\nevent: job\r\ndata: one\r\ndata: two\r\n\r\ndata: plain\r\rdata:no-space\n\n"
        var whole = EventStreamParser()
        let expected = whole.feed(Array(text.utf8))
        #expect(expected == [
            ServerEvent(name: "job", data: "one\ntwo", lastEventID: "1"),
            ServerEvent(name: "message", data: "plain", lastEventID: "1"),
            ServerEvent(name: "message", data: "no-space", lastEventID: "1"),
        ])
        let bytes = Array(text.utf8)
        for cut in 1..<bytes.count {
            var parser = EventStreamParser()
            let events = parser.feed(bytes[..<cut]) + parser.feed(bytes[cut...])
            #expect(events == expected, "cut at \(cut)")
        }
    }

    /// An event without data is not dispatched (its name does not leak into the next one);
    /// unknown fields and an id with NUL are ignored; a bad retry keeps the old one.
    @Test func edgeCasesOfTheFormat() {
        var parser = EventStreamParser()
        let text = "retry: 1500\n\nevent: lonely\n\nfoo: bar\nid: a\u{0}b\nretry: soon\ndata\n\n"
        #expect(parser.feed(Array(text.utf8)) == [ServerEvent(name: "message", data: "", lastEventID: nil)])
        #expect(parser.retry == 1500)
    }
}
