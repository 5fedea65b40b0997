/// The `name` and `filename` parameters of a multipart part's
/// `Content-Disposition: form-data; name="file"; filename="clip.mp4"` header.
///
/// Handles quoted values with backslash escapes and semicolons inside quotes,
/// which real browsers send for unusual file names.
struct ContentDisposition: Sendable, Equatable {
    var name: String?
    var filename: String?

    init(_ header: String) {
        var params: [String: String] = [:]
        var chars = Substring(header)
        // Skip the disposition type ("form-data").
        if let semi = chars.firstIndex(of: ";") { chars = chars[chars.index(after: semi)...] } else { chars = "" }
        while !chars.isEmpty {
            chars = chars.drop(while: { $0 == " " || $0 == "\t" || $0 == ";" })
            guard let eq = chars.firstIndex(of: "=") else { break }
            let key = chars[..<eq].trimmingCharacters(in: .whitespaces).lowercased()
            chars = chars[chars.index(after: eq)...].drop(while: { $0 == " " })
            var value = ""
            if chars.first == "\"" {
                chars = chars.dropFirst()
                var escaped = false
                while let c = chars.first {
                    chars = chars.dropFirst()
                    if escaped { value.append(c); escaped = false }
                    else if c == "\\" { escaped = true }
                    else if c == "\"" { break }
                    else { value.append(c) }
                }
                chars = chars.drop(while: { $0 != ";" })
            } else {
                let end = chars.firstIndex(of: ";") ?? chars.endIndex
                value = chars[..<end].trimmingCharacters(in: .whitespaces)
                chars = chars[end...]
            }
            params[key] = value
        }
        name = params["name"]
        filename = params["filename"]
    }
}
