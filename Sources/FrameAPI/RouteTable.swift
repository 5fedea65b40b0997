import HTTPTypes
import Hummingbird
import Synchronization

/// The routes a router ended up with, so that a request the router did not
/// match can be told apart: a path that exists with other methods answers
/// 405 with `Allow`, anything else 404.
///
/// Filled once the router is complete (``load(_:)``), since middleware is added
/// before the routes it wraps.
public final class RouteTable: Sendable {
    private let routes = Mutex<[(path: RouterPath, method: HTTPRequest.Method)]>([])

    public init() {}

    public func load(_ descriptions: [Router<APIRequestContext>.RouteDescription]) {
        routes.withLock { $0 = descriptions.map { ($0.path, $0.method) } }
    }

    /// Methods some route takes at `path`, sorted; empty when no route has this path.
    func methods(at path: String) -> [HTTPRequest.Method] {
        let components = path.split(separator: "/", omittingEmptySubsequences: true)
        let matching = routes.withLock { all in
            all.filter { route in
                route.path.components.count == components.count
                    && zip(route.path.components, components).allSatisfy { element, component in element ~= component }
            }.map(\.method)
        }
        return Set(matching.map(\.rawValue)).sorted().compactMap { HTTPRequest.Method($0) }
    }
}
