import FrameCore

/// Why a certificate operation failed; each case names the file or value at fault.
public enum CertificateError: Error, Sendable, Equatable, CustomStringConvertible, CodedError {
    case exists(String)
    case missingCA(String)
    case unreadable(String, String)
    case invalidNodeName(String)
    case reservedName(String)
    case invalidIPAddress(String)
    case generation(String)
    case io(String, String)

    public var code: ErrorCode { .configInvalid }
    public var message: String { description }

    public var description: String {
        switch self {
        case .exists(let path): "\(path) already exists (use --force to replace it)"
        case .missingCA(let dir): "no cluster CA in \(dir) (run `frameflow certs init --dir \(dir)` first)"
        case .unreadable(let path, let why): "cannot read \(path): \(why)"
        case .invalidNodeName(let name):
            "invalid node name '\(name)': use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        case .reservedName(let name): "'\(name)' is reserved for the cluster's own files"
        case .invalidIPAddress(let ip): "invalid IP address '\(ip)'"
        case .generation(let why): "certificate generation failed: \(why)"
        case .io(let path, let why): "cannot write \(path): \(why)"
        }
    }
}
