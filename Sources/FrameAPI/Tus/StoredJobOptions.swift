import FrameCore
import Foundation

/// The job options of a resumable upload as kept in `tus_uploads.options` between its creation
/// (where the metadata is validated) and its last chunk (where the job is created).
struct StoredJobOptions: Codable, Sendable, Equatable {
    var rate: Rational
    var output: OutputOptions
    var labels: [String: String]?

    init(_ options: JobOptions) {
        rate = options.rate
        output = options.output
        labels = options.labelRequirement
    }

    var jobOptions: JobOptions { JobOptions(rate: rate, output: output, labelRequirement: labels) }

    func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }

    static func decode(_ json: String) throws -> StoredJobOptions {
        try JSONDecoder().decode(StoredJobOptions.self, from: Data(json.utf8))
    }
}
