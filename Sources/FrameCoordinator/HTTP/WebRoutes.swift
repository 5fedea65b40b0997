import FrameAPI
import FrameWeb
import Foundation
import Hummingbird
import NIOCore

/// The web app on the coordinator's HTTP listener: the static files at `/` and `/web/...`,
/// the API's cookie session, thumbnails and the user's event stream, and for operators
/// `GET /admin/events` (cluster samples, server push) and `GET /admin/cluster` (the snapshot);
/// and the API's contract at `/openapi.yaml` and `/openapi.json`.
struct WebRoutes: Sendable {
    let events: EventStreamResponder
    let monitor: ClusterMonitor?
    let assets: WebAssets
    var contract: APIContract? = nil

    func add(to router: Router<APIRequestContext>, admin: RouterGroup<APIRequestContext>, api: FrameAPIServer?, adminToken: String?) {
        assets.addRoutes(to: router)
        contract?.addRoutes(to: router)
        api?.addWebRoutes(to: router, adminToken: adminToken, events: events)
        let monitor = self.monitor
        admin.get("cluster") { _, _ -> Response in
            var headers = HTTPFields()
            headers[.contentType] = "application/json"
            headers[.cacheControl] = "no-store"
            let snapshot = await monitor?.snapshot() ?? "{}"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: snapshot)))
        }
        admin.get("events") { request, _ in
            try events.respond(.operators, request: request, initial: monitor.map { monitor in
                { @Sendable in ("snapshot", await monitor.snapshot()) }
            })
        }
    }
}
