import FrameCore
import NIOCore

/// One decoded frame of the node protocol: a message of any type.
///
/// This is what the NIO pipeline carries in both directions
/// (``MessageDecoder`` yields it, ``MessageEncoder`` takes it), so session
/// code can `switch` over every message exhaustively and the compiler finds
/// the places to update when a type is added.
public enum Message: Sendable, Hashable {
    case hello(Hello)
    case welcome(Welcome)
    case heartbeat(Heartbeat)
    case lease(Lease)
    case leaseURL(LeaseURL)
    case read(Read)
    case readData(ReadData)
    case frame(Frame)
    case segmentDone(SegmentDone)
    case segmentFailed(SegmentFailed)
    case cancel(Cancel)
    case drain(Drain)
    case goodbye(Goodbye)
    case error(ErrorMessage)

    /// The frame's type byte.
    public var type: MessageType { payload.messageType }

    /// The lease this message is about, if it is about exactly one (LEASE,
    /// LEASE_URL, READ, FRAME, SEGMENT_DONE, SEGMENT_FAILED, CANCEL, ERROR with a lease).
    /// The session uses it for the epoch check common to all of them.
    public var leaseRef: LeaseRef? {
        switch self {
        case .lease(let m): m.lease
        case .leaseURL(let m): m.lease.lease
        case .read(let m): m.lease
        case .frame(let m): m.lease
        case .segmentDone(let m): m.lease
        case .segmentFailed(let m): m.lease
        case .cancel(let m): m.lease
        case .error(let m): m.lease
        case .hello, .welcome, .heartbeat, .readData, .drain, .goodbye: nil
        }
    }

    /// The payload as the codec's uniform interface.
    var payload: any WirePayload {
        switch self {
        case .hello(let m): m
        case .welcome(let m): m
        case .heartbeat(let m): m
        case .lease(let m): m
        case .leaseURL(let m): m
        case .read(let m): m
        case .readData(let m): m
        case .frame(let m): m
        case .segmentDone(let m): m
        case .segmentFailed(let m): m
        case .cancel(let m): m
        case .drain(let m): m
        case .goodbye(let m): m
        case .error(let m): m
        }
    }

    /// Decodes the payload of a message of the given type.
    init(type: MessageType, payload buffer: inout ByteBuffer) throws(WireError) {
        switch type {
        case .hello: self = .hello(try Hello(payload: &buffer))
        case .welcome: self = .welcome(try Welcome(payload: &buffer))
        case .heartbeat: self = .heartbeat(try Heartbeat(payload: &buffer))
        case .lease: self = .lease(try Lease(payload: &buffer))
        case .leaseURL: self = .leaseURL(try LeaseURL(payload: &buffer))
        case .read: self = .read(try Read(payload: &buffer))
        case .readData: self = .readData(try ReadData(payload: &buffer))
        case .frame: self = .frame(try Frame(payload: &buffer))
        case .segmentDone: self = .segmentDone(try SegmentDone(payload: &buffer))
        case .segmentFailed: self = .segmentFailed(try SegmentFailed(payload: &buffer))
        case .cancel: self = .cancel(try Cancel(payload: &buffer))
        case .drain: self = .drain(try Drain(payload: &buffer))
        case .goodbye: self = .goodbye(try Goodbye(payload: &buffer))
        case .error: self = .error(try ErrorMessage(payload: &buffer))
        }
    }
}

extension WirePayload {
    var messageType: MessageType { Self.messageType }
}
