import Hummingbird

/// CORS for browser front ends on other origins, limited to the origins listed in
/// `coordinator.cors.allowed_origins` (none by default).
///
/// A listed origin gets its own origin back (never `*`) with credentials allowed, the headers a
/// tus client and a download need exposed, and its preflights answered here (204) before any
/// route or authentication runs. An unlisted origin gets no CORS header at all (the browser then
/// keeps the answer from the page), and its preflight is refused with 403. Requests without
/// `Origin` (curl, the CLI, tus clients) are untouched. Hummingbird's own `CORSMiddleware` allows
/// one origin or all of them, not a list.
public struct CORSAllowList<Context: RequestContext>: RouterMiddleware {
    let origins: Set<String>

    static var allowedMethods: String { "GET, HEAD, POST, PATCH, DELETE, OPTIONS" }
    static var allowedHeaders: String {
        "Authorization, Content-Type, Range, Tus-Resumable, Upload-Length, Upload-Offset, Upload-Metadata, "
            + "Upload-Checksum, Upload-Defer-Length, X-HTTP-Method-Override"
    }
    static var exposedHeaders: String {
        "Location, Retry-After, Content-Disposition, Content-Range, Accept-Ranges, Tus-Resumable, Tus-Version, "
            + "Tus-Extension, Tus-Max-Size, Tus-Checksum-Algorithm, Upload-Offset, Upload-Length, Upload-Metadata, "
            + "Upload-Expires, FrameFlow-Video-Id, FrameFlow-Error-Code"
    }

    public init(origins: [String]) {
        self.origins = Set(origins.map { $0.lowercased() })
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let origin = request.headers[.origin] else { return try await next(request, context) }
        let allowed = origins.contains(origin.lowercased())
        if request.method == .options, request.headers[.accessControlRequestMethod] != nil {
            guard allowed else {
                throw APIError.forbidden("origin \(origin) is not allowed to call this API (coordinator.cors.allowed_origins)")
            }
            var headers = HTTPFields()
            headers[.accessControlAllowMethods] = Self.allowedMethods
            headers[.accessControlAllowHeaders] = Self.allowedHeaders
            headers[.accessControlMaxAge] = "600"
            var response = Response(status: .noContent, headers: headers)
            decorate(&response, origin: origin)
            return response
        }
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as any HTTPResponseError {
            response = try error.response(from: request, context: context)
        }
        if allowed {
            decorate(&response, origin: origin)
            response.headers[.accessControlExposeHeaders] = Self.exposedHeaders
        } else {
            response.headers[.vary] = "Origin"
        }
        return response
    }

    private func decorate(_ response: inout Response, origin: String) {
        response.headers[.accessControlAllowOrigin] = origin
        response.headers[.accessControlAllowCredentials] = "true"
        response.headers[.vary] = "Origin"
    }
}
