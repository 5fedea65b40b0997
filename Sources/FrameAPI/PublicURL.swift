import Hummingbird

/// Absolute URLs for links the API hands out (signed downloads, tus upload locations): clients
/// use them as given (curl, tus clients), so a root-relative path is not enough.
///
/// The configured public base URL wins (a coordinator behind a proxy knows its outside name only
/// from configuration); otherwise the request's own scheme and `Host`.
enum PublicURL {
    static func base(_ request: Request, configured: String?) -> String {
        if let configured, !configured.isEmpty {
            return configured.hasSuffix("/") ? String(configured.dropLast()) : configured
        }
        let scheme = request.head.scheme ?? "http"
        guard let authority = request.head.authority, !authority.isEmpty else { return "" }
        return "\(scheme)://\(authority)"
    }

    static func absolute(_ path: String, _ request: Request, configured: String?) -> String {
        base(request, configured: configured) + path
    }
}
