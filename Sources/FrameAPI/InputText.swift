/// The rule every text a client sends must pass: no control characters.
///
/// U+0000 is the dangerous one: C libraries below us (libpq's parameters,
/// bcrypt) read strings up to the first NUL, so `Abc1!\0anything` would be
/// stored, compared and hashed as `Abc1!`. The other C0/C1 controls and DEL
/// (Unicode category Cc) make no sense in an e-mail, a password, a name, a
/// file name, an option or a label either, and CR/LF in particular end up in
/// mail headers and logs; bidirectional overrides and isolates (U+202A-202E,
/// U+2066-2069) make a file name display as something it is not. None of the
/// API's inputs is free text that needs a line break, so one rule covers all.
///
/// Each input kind applies it in one place: JSON bodies in
/// ``ValidatingJSONDecoder``, query parameters in ``RequestGuardMiddleware``,
/// multipart part headers (so file names) in ``MultipartStreamParser``, form
/// fields in ``UploadReceiver``.
enum InputText {
    /// The first character the rule refuses, or nil when `text` is acceptable.
    static func firstRefused(in text: some StringProtocol) -> Unicode.Scalar? {
        text.unicodeScalars.first(where: isRefused)
    }

    static func isRefused(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00...0x1F, 0x7F...0x9F: true  // Cc: C0, DEL, C1
        case 0x202A...0x202E, 0x2066...0x2069: true  // bidi embeddings, overrides, isolates
        default: false
        }
    }

    /// `U+0000`: how a refused character is named in error details.
    static func name(_ scalar: Unicode.Scalar) -> String {
        let hex = String(scalar.value, radix: 16, uppercase: true)
        return "U+" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
    }

    /// Throws 422 VALIDATION_FAILED naming `field` and the character when `text` breaks the rule.
    static func check(_ text: some StringProtocol, field: String) throws(APIError) {
        if let bad = firstRefused(in: text) { throw refusal(field: field, bad) }
    }

    static func refusal(field: String, _ scalar: Unicode.Scalar) -> APIError {
        APIError.validation("\(field) contains the control character \(name(scalar)), which is not allowed")
    }
}
