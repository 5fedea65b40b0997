import FrameAPI
import FrameWeb
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Testing
@testable import FrameCoordinator

/// The web app's files as the coordinator serves them: bundled (any working directory),
/// with ETags, revalidation, the strict CSP on the page, and only ES modules from 'self'.
@Suite struct WebAssetsTests {
    @Test func theAppIsServedFromTheBundleWithETagsAndAStrictCSP() async throws {
        var logger = Logger(label: "test")
        logger.logLevel = .error
        let registry = NodeRegistry(directory: InMemoryNodeDirectory(), logger: logger)
        let web = WebRoutes(events: EventStreamResponder(hub: EventHub()), monitor: nil, assets: .bundled())
        let router = CoordinatorRoutes.build(registry: registry, adminToken: "admin", web: web, ready: { true })
        let app = Application(router: router, logger: logger)
        try await app.test(.router) { client in
            let page = try await client.execute(uri: "/", method: .get)
            #expect(page.status == .ok)
            #expect(page.headers[.contentType] == "text/html; charset=utf-8")
            let csp = try #require(page.headers[.contentSecurityPolicy])
            #expect(csp.hasPrefix("default-src 'self'"))
            let html = String(buffer: page.body)
            #expect(html.contains("<script type=\"module\" src=\"/web/js/app.js\"></script>"))
            // No inline script or style anywhere in the page (the CSP would refuse them).
            #expect(!html.contains("<script>") && !html.contains("style=") && !html.contains("<style"))
            let etag = try #require(page.headers[.eTag])
            let again = try await client.execute(uri: "/", method: .get, headers: [.ifNoneMatch: etag])
            #expect(again.status == .notModified)
            #expect(again.body.readableBytes == 0)

            let script = try await client.execute(uri: "/web/js/app.js", method: .get)
            #expect(script.status == .ok)
            #expect(script.headers[.contentType] == "text/javascript; charset=utf-8")
            #expect(script.headers[.cacheControl] == "no-cache")
            #expect(String(buffer: script.body).contains("/auth/session"))
            #expect(try await client.execute(uri: "/web/css/app.css", method: .get).status == .ok)
            #expect(try await client.execute(uri: "/web/js/nope.js", method: .get).status == .notFound)
            #expect(try await client.execute(uri: "/web/../Package.swift", method: .get).status == .notFound)
        }
    }

    @Test func openEventStreamsAndTheirLimitAreInMetrics() async throws {
        var logger = Logger(label: "test")
        logger.logLevel = .error
        let hub = EventHub(maxStreams: 1)
        let registry = NodeRegistry(directory: InMemoryNodeDirectory(), logger: logger)
        let endpoint = MetricsEndpoint(metrics: CoordinatorMetrics(), nodes: registry, logger: logger, jobCounts: nil, events: hub)
        let open = try hub.subscribe(.operators)
        #expect(throws: EventHub.Unavailable.self) { try hub.subscribe(.operators) }
        let text = await endpoint.scrape()
        #expect(text.contains(#"frameflow_event_streams{state="open"} 1.0"#))
        #expect(text.contains(#"frameflow_event_streams{state="limit"} 1.0"#))
        #expect(text.contains("frameflow_event_streams_refused 1.0"))
        open.cancel()
        #expect(await endpoint.scrape().contains(#"frameflow_event_streams{state="open"} 0.0"#))
    }

    @Test func noAssetUsesInnerHTMLOrEval() throws {
        // Text from users (file names, error messages) reaches the DOM through textContent only.
        for (path, asset) in WebAssetsBundle.files where path.hasSuffix(".js") {
            let source = String(buffer: asset.bytes)
            for banned in ["innerHTML", "outerHTML", "insertAdjacentHTML", "eval(", "new Function", "document.write"] {
                #expect(!source.contains(banned), "\(path) uses \(banned)")
            }
        }
    }
}

enum WebAssetsBundle { static let files = WebAssets.bundled().files }
