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

    /// The client's IP address (no port), for per-address limits; "unknown" when the socket has none.
    public var clientAddress: String { channel.remoteAddress?.ipAddress ?? "unknown" }

    /// The caller, or 401 when the route was reached without authentication.
    public func requireIdentity() throws -> AuthenticatedUser {
        guard let identity else { throw APIError.unauthorized() }
        return identity
    }
}
