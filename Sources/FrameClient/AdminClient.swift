import FrameCore
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Talks to the coordinator's operator endpoints (`/admin/...`) with the admin token.
public struct AdminClient: Sendable {
    public let baseURL: URL
    public let token: String?

    public init(baseURL: URL, token: String?) {
        self.baseURL = baseURL
        self.token = token
    }

    /// A node as the coordinator reports it (the same type the coordinator encodes).
    public typealias Node = NodeStatus

    struct NodeList: Decodable { var items: [Node] }

    /// Every node the coordinator knows.
    public func nodes() async throws(FrameFlowError) -> [Node] {
        let data = try await request("GET", "admin/nodes")
        do { return try Self.decoder.decode(NodeList.self, from: data).items } catch {
            throw FrameFlowError(.internalError, "unexpected answer from the coordinator: \(error)")
        }
    }

    /// POSTs an operator action (`drain`, `revoke`, `enable`) for a node.
    public func nodeAction(_ action: String, name: String) async throws(FrameFlowError) {
        _ = try await request("POST", "admin/nodes/\(name)/\(action)")
    }

    static let decoder: JSONDecoder = {
        let d = JSONDecoder()
        d.dateDecodingStrategy = .iso8601
        return d
    }()

    private func request(_ method: String, _ path: String) async throws(FrameFlowError) -> Data {
        var req = URLRequest(url: baseURL.appendingPathComponent(path))
        req.httpMethod = method
        if let token { req.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        let data: Data
        let response: URLResponse
        do {
            (data, response) = try await URLSession.shared.data(for: req)
        } catch {
            throw FrameFlowError(.internalError, "cannot reach the coordinator at \(baseURL): \(error.localizedDescription)")
        }
        guard let http = response as? HTTPURLResponse else {
            throw FrameFlowError(.internalError, "no HTTP answer from \(baseURL)")
        }
        guard (200..<300).contains(http.statusCode) else {
            throw Self.problem(data, status: http.statusCode)
        }
        return data
    }

    /// Turns a problem+json body into a ``FrameFlowError`` with its code.
    static func problem(_ data: Data, status: Int) -> FrameFlowError {
        struct Problem: Decodable { var code: String?; var detail: String? }
        let p = try? JSONDecoder().decode(Problem.self, from: data)
        let code = p?.code.flatMap(ErrorCode.init(name:)) ?? .internalError
        return FrameFlowError(code, "HTTP \(status): \(p?.detail ?? String(decoding: data, as: UTF8.self))")
    }
}
