import HTTPTypes

/// Response fields every answer carries, whatever produced it (a route, an
/// error, the parse-error handler).
///
/// The CSP allows only same-origin resources and no inline script or style,
/// which suits a web app at `/` written as plain ES modules
/// (`<script type="module" src="/app.js">`): keep scripts in files. Frames
/// and form targets are locked down; `img-src` also takes `blob:` and `data:`
/// so a page can show frames it unpacked itself. `Referrer-Policy:
/// no-referrer` keeps signed download links (their signature is in the query)
/// out of other sites' logs. A field a route set itself is left alone.
enum SecurityHeaders {
    static let contentSecurityPolicy =
        "default-src 'self'; img-src 'self' blob: data:; object-src 'none'; base-uri 'none'; "
        + "frame-ancestors 'none'; form-action 'self'"

    static let fields: [(HTTPField.Name, String)] = [
        (.xContentTypeOptions, "nosniff"),
        (.xFrameOptions, "DENY"),
        (.contentSecurityPolicy, contentSecurityPolicy),
        (.referrerPolicy, "no-referrer"),
        (.crossOriginOpenerPolicy, "same-origin"),
    ]

    static func apply(to headers: inout HTTPFields) {
        for (name, value) in fields where headers[name] == nil {
            headers[name] = value
        }
    }
}

extension HTTPField.Name {
    static let xFrameOptions = Self("X-Frame-Options")!
    static let referrerPolicy = Self("Referrer-Policy")!
    static let crossOriginOpenerPolicy = Self("Cross-Origin-Opener-Policy")!
}
