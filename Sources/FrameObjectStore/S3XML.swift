/// Just enough XML for S3's answers: the text of `<Name>...</Name>` elements.
///
/// S3 answers are flat, machine-written documents (no CDATA, no comments in the elements we read,
/// no attributes on them), so a scanner for one element name at a time is all FrameFlow needs; it
/// keeps Foundation's XML parser (and libxml2) out of the link.
enum S3XML {
    /// The decoded text of every `<name>` element, in document order (for nested lookups, take the
    /// ``elements(_:in:)`` of the parent first, e.g. `Key` within each `Contents`).
    static func values(of name: String, in xml: String) -> [String] {
        var out: [String] = []
        var rest = Substring(xml)
        let open = "<\(name)>", close = "</\(name)>"
        while let start = rest.range(of: open) {
            let after = rest[start.upperBound...]
            guard let end = after.range(of: close) else { break }
            out.append(decode(String(after[..<end.lowerBound])))
            rest = after[end.upperBound...]
        }
        return out
    }

    static func firstValue(of name: String, in xml: String) -> String? { values(of: name, in: xml).first }

    /// The inner text of every `<name>` element, undecoded (for nested lookups).
    static func elements(_ name: String, in xml: String) -> [String] {
        var out: [String] = []
        var rest = Substring(xml)
        let open = "<\(name)>", close = "</\(name)>"
        while let start = rest.range(of: open) {
            let after = rest[start.upperBound...]
            guard let end = after.range(of: close) else { break }
            out.append(String(after[..<end.lowerBound]))
            rest = after[end.upperBound...]
        }
        return out
    }

    /// The five predefined entities and numeric character references.
    static func decode(_ s: String) -> String {
        guard s.contains("&") else { return s }
        var out = ""
        var i = s.startIndex
        while i < s.endIndex {
            if s[i] == "&", let semi = s[i...].firstIndex(of: ";"), s.distance(from: i, to: semi) <= 10 {
                let entity = s[s.index(after: i)..<semi]
                var replacement: String?
                switch entity {
                case "amp": replacement = "&"
                case "lt": replacement = "<"
                case "gt": replacement = ">"
                case "quot": replacement = "\""
                case "apos": replacement = "'"
                default:
                    if entity.hasPrefix("#x"), let v = UInt32(entity.dropFirst(2), radix: 16), let u = Unicode.Scalar(v) {
                        replacement = String(Character(u))
                    } else if entity.hasPrefix("#"), let v = UInt32(entity.dropFirst()), let u = Unicode.Scalar(v) {
                        replacement = String(Character(u))
                    }
                }
                if let replacement {
                    out += replacement
                    i = s.index(after: semi)
                    continue
                }
            }
            out.append(s[i])
            i = s.index(after: i)
        }
        return out
    }

    static func escape(_ s: String) -> String {
        var out = ""
        for ch in s {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default: out.append(ch)
            }
        }
        return out
    }
}
