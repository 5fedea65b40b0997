import FrameCore
import FrameWire

/// The field rules a node's message must pass before the coordinator uses
/// any of it, apart from the lease context (which ``ReadRange`` and
/// ``FrameCheck`` judge): proto-spec/handshake.md, "HELLO fields", and
/// messages.md.
///
/// The codec guarantees only that a message is well formed; a node with a
/// valid certificate can still send any value a field's type allows. Here
/// every such value is either accepted, normalised (free text) or refused
/// with `INVALID_FIELD` (fatal), in one place, so that nothing downstream
/// (the registry's `Int64` counters, the database's text and jsonb columns,
/// the logs) meets a value it cannot represent.
public enum NodeMessageRules {
    /// The most slots a node may announce: more than any machine decodes at once.
    public static let maxSlots: UInt16 = 1024
    /// The most leases a HELLO may offer to resume. More than `slots`: a node
    /// also lists the leases it finished in the last seconds (kept so that a
    /// result lost in a dropped connection can be sent again); the
    /// coordinator resumes at most `slots` of them (``SlotLedger``).
    public static let maxHeldLeases = 1024
    public static let maxLabels = 64
    public static let maxLabelKeyBytes = 64
    public static let maxLabelValueBytes = 256
    public static let maxSoftwareVersionBytes = 256
    /// Free text (SEGMENT_FAILED message, DRAIN reason, ...) is cut to this many characters.
    public static let maxFreeTextCharacters = 1024

    public enum Verdict: Sendable, Equatable {
        /// Use this message (free text normalised).
        case accept(Message)
        /// Refuse with a fatal `INVALID_FIELD` carrying this reason.
        case refuse(String)
    }

    public static func check(_ message: Message) -> Verdict {
        switch message {
        case .hello(let hello):
            if let problem = problem(in: hello) { return .refuse(problem) }
            return .accept(message)
        case .heartbeat(let hb):
            // The registry keeps it as an Int64 (and PostgreSQL as a bigint).
            guard hb.framesTotal <= UInt64(Int64.max) else {
                return .refuse("HEARTBEAT.framesTotal \(hb.framesTotal) exceeds 2^63-1")
            }
            return .accept(message)
        case .segmentFailed(var failed):
            // Stored in the job record the user reads, and in the logs.
            failed.message = freeText(failed.message)
            return .accept(.segmentFailed(failed))
        case .drain(var drain):
            drain.reason = freeText(drain.reason)
            return .accept(.drain(drain))
        case .goodbye(var bye):
            bye.message = freeText(bye.message)
            return .accept(.goodbye(bye))
        case .error(var error):
            error.message = freeText(error.message)
            return .accept(.error(error))
        case .welcome, .lease, .leaseURL, .read, .readData, .frame, .segmentDone, .cancel:
            return .accept(message)
        }
    }

    static func problem(in hello: Hello) -> String? {
        guard (1...maxSlots).contains(hello.slots) else {
            return "HELLO.slots must be 1...\(maxSlots), got \(hello.slots)"
        }
        guard hello.heldLeases.count <= maxHeldLeases else {
            return "HELLO offers \(hello.heldLeases.count) held leases; at most \(maxHeldLeases) are allowed"
        }
        guard Set(hello.heldLeases).count == hello.heldLeases.count else {
            return "HELLO.heldLeases lists a lease twice"
        }
        guard hello.labels.count <= maxLabels else {
            return "HELLO has \(hello.labels.count) labels; at most \(maxLabels) are allowed"
        }
        for label in hello.labels {
            guard !label.key.isEmpty, label.key.utf8.count <= maxLabelKeyBytes, isPrintable(label.key) else {
                return "HELLO label key '\(freeText(label.key))' must be 1...\(maxLabelKeyBytes) bytes without control characters"
            }
            guard label.value.utf8.count <= maxLabelValueBytes, isPrintable(label.value) else {
                return "HELLO label '\(label.key)' has a value over \(maxLabelValueBytes) bytes or with control characters"
            }
        }
        guard hello.softwareVersion.utf8.count <= maxSoftwareVersionBytes, isPrintable(hello.softwareVersion) else {
            return "HELLO.softwareVersion must be at most \(maxSoftwareVersionBytes) bytes without control characters"
        }
        return nil
    }

    /// No control characters (U+0000...U+001F, U+007F...U+009F): PostgreSQL
    /// refuses NUL in text and jsonb, and the others forge log lines.
    static func isPrintable(_ text: String) -> Bool {
        !text.unicodeScalars.contains { $0.properties.generalCategory == .control }
    }

    /// `text` with each control character replaced by a space, cut to ``maxFreeTextCharacters``.
    public static func freeText(_ text: String) -> String {
        var scalars = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            scalars.append(scalar.properties.generalCategory == .control ? " " : scalar)
        }
        let clean = String(scalars)
        return clean.count > maxFreeTextCharacters ? String(clean.prefix(maxFreeTextCharacters)) + "…" : clean
    }
}
