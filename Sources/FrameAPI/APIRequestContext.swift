import Foundation
import Hummingbird
import NIOCore

/// The request context of the coordinator's HTTP API (operator routes and the
/// user-facing API alike): JSON with ISO 8601 dates and sorted keys, plus the
/// caller once ``JWTAuthMiddleware`` has authenticated the request.
///
/// Keeping the caller in the context (rather than re-reading the token in each
/// handler) means a route inside the authenticated group cannot forget to check it.
public struct APIRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The authenticated caller; set by ``JWTAuthMiddleware``, nil on public routes.
    public var identity: AuthenticatedUser?
    /// The connection, for pipeline events such as ``ExpectContinueHandler/SendContinue``.
    public let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        identity = nil
        channel = source.channel
    }

    public var responseEncoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }

    /// JSON with every string checked for control characters (see ``ValidatingJSONDecoder``).
    public var requestDecoder: ValidatingJSONDecoder { ValidatingJSONDecoder() }

    /// What `request.decode` and `collectBody` accept; uploads stream and are limited on their own.
    public var maxUploadSize: Int { ValidatingJSONDecoder.maxBodyBytes }

    /// The client, for per-address limits: its IPv4 address, or the /64 prefix of its IPv6 address
    /// (one host usually holds a whole /64, so counting single IPv6 addresses would count nothing);
    /// "unknown" when the socket has no address.
    public var clientAddress: String {
        switch channel.remoteAddress {
        case .v6(let address)?:
            let bytes = withUnsafeBytes(of: address.address.sin6_addr) { Array($0) }
            return Self.addressKey(ipv6: bytes)
        case let other?:
            return other.ipAddress ?? "unknown"
        case nil:
            return "unknown"
        }
    }

    /// `a.b.c.d` for an IPv4-mapped address, else the first 64 bits in hex with `::/64`.
    static func addressKey(ipv6 bytes: [UInt8]) -> String {
        guard bytes.count == 16 else { return "unknown" }
        if bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF {
            return bytes[12...].map(String.init).joined(separator: ".")
        }
        let groups = stride(from: 0, to: 8, by: 2).map { String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16) }
        return groups.joined(separator: ":") + "::/64"
    }

    /// The caller, or 401 when the route was reached without authentication.
    public func requireIdentity() throws -> AuthenticatedUser {
        guard let identity else { throw APIError.unauthorized() }
        return identity
    }
}
