/// The type byte of a frame: which message its payload holds.
///
/// Numbers are grouped by purpose (0x0_ session, 0x1_ leases and data,
/// 0x2_ shutdown, 0x7F errors) and never reused, so a capture can be read by
/// eye and a future version can add types without renumbering.
public enum MessageType: UInt8, Sendable, CaseIterable {
    case hello = 0x01
    case welcome = 0x02
    case heartbeat = 0x03
    case lease = 0x10
    case read = 0x11
    case readData = 0x12
    case frame = 0x13
    case segmentDone = 0x14
    case segmentFailed = 0x15
    case cancel = 0x16
    /// Version 2 and later.
    case leaseURL = 0x17
    case drain = 0x20
    case goodbye = 0x21
    case error = 0x7F

    /// The upper-snake-case name used in the specification and in logs, e.g. `READ_DATA`.
    public var name: String {
        switch self {
        case .hello: "HELLO"
        case .welcome: "WELCOME"
        case .heartbeat: "HEARTBEAT"
        case .lease: "LEASE"
        case .read: "READ"
        case .readData: "READ_DATA"
        case .frame: "FRAME"
        case .segmentDone: "SEGMENT_DONE"
        case .segmentFailed: "SEGMENT_FAILED"
        case .cancel: "CANCEL"
        case .leaseURL: "LEASE_URL"
        case .drain: "DRAIN"
        case .goodbye: "GOODBYE"
        case .error: "ERROR"
        }
    }

    /// Which side may send this message.
    public var direction: Direction {
        switch self {
        case .hello, .read, .frame, .segmentDone, .segmentFailed: .nodeToCoordinator
        case .welcome, .lease, .leaseURL, .readData, .cancel: .coordinatorToNode
        case .heartbeat, .drain, .goodbye, .error: .both
        }
    }

    /// The first protocol version that has this message type. A frame of a
    /// type newer than the session's negotiated version is answered with
    /// `UNKNOWN_MESSAGE_TYPE` (proto-spec/framing.md), by the session state
    /// machines, which know the version; the codec itself is version-free
    /// because no message's layout ever changes, types are only added.
    public var sinceVersion: UInt16 {
        switch self {
        case .leaseURL: ProtocolVersion.directReads
        default: 1
        }
    }

    /// Who may send a message type; the session state machines use it to
    /// answer a message from the wrong side with `UNEXPECTED_MESSAGE`.
    public enum Direction: Sendable, Hashable {
        case nodeToCoordinator
        case coordinatorToNode
        case both
    }
}
