import FrameCore

/// The job options of an upload, read from query parameters and form fields
/// (a form field wins over a query parameter of the same name).
///
/// Each value is checked as soon as it is seen, so a bad option fails the
/// request before (or while) the file is streamed, with a message naming the field.
struct FormOptions: Sendable {
    static let fieldNames: Set<String> = ["fps", "format", "quality", "maxWidth", "maxHeight", "labels"]

    var rate: Rational
    var output: OutputOptions
    /// Labels a node must carry to work on the job (`labels=gpu=yes,region=eu`); empty: any node.
    var labels: [String: String] = [:]

    init(defaults: JobOptions) {
        rate = defaults.rate
        output = defaults.output
    }

    /// Applies one option; throws 422 VALIDATION_FAILED naming `name` when `value` is not acceptable.
    mutating func set(_ name: String, _ value: String) throws(APIError) {
        let text = value.trimmingCharacters(in: .whitespacesAndNewlines)
        switch name {
        case "fps":
            guard let rate = Rational(parsing: text), rate.doubleValue <= 1000 else {
                throw APIError.validation("fps must be a positive rate such as 1, 0.1, 2.5 or 1/3 (at most 1000), got '\(text)'")
            }
            self.rate = rate
        case "format":
            guard let format = ImageFormat(name: text) else {
                throw APIError.validation("format must be png or jpg, got '\(text)'")
            }
            output.format = format
        case "quality":
            guard let q = Int(text), (1...31).contains(q) else {
                throw APIError.validation("quality must be an integer from 1 (best) to 31 (worst), got '\(text)'")
            }
            output.quality = UInt8(q)
        case "maxWidth", "maxHeight":
            guard let v = Int(text), (0...16384).contains(v) else {
                throw APIError.validation("\(name) must be an integer from 0 (no limit) to 16384, got '\(text)'")
            }
            if name == "maxWidth" { output.maxWidth = UInt32(v) } else { output.maxHeight = UInt32(v) }
        case "labels":
            labels = try Self.parseLabels(text)
        default:
            break
        }
    }

    var jobOptions: JobOptions { JobOptions(rate: rate, output: output, labelRequirement: labels.isEmpty ? nil : labels) }

    /// `key=value,key=value`: keys and values of letters, digits, `.`, `_`, `-` (at most 63 each,
    /// keys start with a letter or digit), at most 16 pairs, no key twice. An empty text means no requirement.
    static func parseLabels(_ text: String) throws(APIError) -> [String: String] {
        var labels: [String: String] = [:]
        guard !text.isEmpty else { return labels }
        func valid(_ s: Substring) -> Bool {
            !s.isEmpty && s.count <= 63 && s.first.map { $0.isLetter || $0.isNumber } == true
                && s.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "_" || $0 == "-") }
        }
        let pairs = text.split(separator: ",", omittingEmptySubsequences: false)
        guard pairs.count <= 16 else { throw APIError.validation("labels: at most 16 labels, got \(pairs.count)") }
        for pair in pairs {
            let kv = pair.trimmingCharacters(in: .whitespaces).split(separator: "=", omittingEmptySubsequences: false)
            guard kv.count == 2, valid(kv[0]), valid(kv[1]) else {
                throw APIError.validation(
                    "labels must be key=value pairs separated by commas (letters, digits, '.', '_', '-'), got '\(pair)'")
            }
            guard labels.updateValue(String(kv[1]), forKey: String(kv[0])) == nil else {
                throw APIError.validation("labels: '\(kv[0])' is given twice")
            }
        }
        return labels
    }
}
