import CLibFuzzer
import FrameFuzzChecks
import Foundation

/// `frameflow-fuzz TARGET [libFuzzer options] [corpus directories or input files]`: runs libFuzzer
/// on one target (built only by scripts/fuzz, with -sanitize=fuzzer,address).
///
/// - `frame-decoder`: the input is a node's inbound byte stream; ``FrameStreamCheck`` decodes it
///   three ways and checks the codec's contract.
/// - `node-session`: a control byte and a node's byte stream; ``NodeSessionCheck`` feeds its frames
///   through the coordinator's session state machine and checks every action.
///
/// A broken invariant traps, so libFuzzer saves the input as a crash. Given files instead of
/// directories, libFuzzer runs just those inputs (to replay a crash).
@main
enum FuzzMain {
    static func main() {
        var arguments = CommandLine.arguments
        // The target travels in the environment so that libFuzzer's -fork/-jobs children, started
        // with the options alone, fuzz the same one.
        if arguments.count > 1, FuzzTarget(rawValue: arguments[1]) != nil {
            setenv(FuzzTarget.environmentKey, arguments.remove(at: 1), 1)
        }
        guard FuzzTarget.selected != nil else {
            let names = FuzzTarget.allCases.map(\.rawValue).joined(separator: "|")
            FileHandle.standardError.write(Data("usage: \(arguments[0]) \(names) [libFuzzer options] [corpus directories or files]\n".utf8))
            exit(2)
        }
        var argv = arguments.map { strdup($0) } + [nil]
        var argc = CInt(arguments.count)
        let status = argv.withUnsafeMutableBufferPointer { buffer in
            var pointer = buffer.baseAddress
            return LLVMFuzzerRunDriver(&argc, &pointer, LLVMFuzzerTestOneInput)
        }
        exit(status)
    }
}

/// The fuzz targets, by the name on the command line.
enum FuzzTarget: String, CaseIterable {
    case frameDecoder = "frame-decoder"
    case nodeSession = "node-session"

    static let environmentKey = "FRAMEFLOW_FUZZ_TARGET"
    /// Read once, after `main` has put the command line's choice into the environment.
    static let selected: FuzzTarget? = ProcessInfo.processInfo.environment[environmentKey].flatMap(FuzzTarget.init)

    func check(_ bytes: [UInt8]) throws(FuzzViolation) {
        switch self {
        case .frameDecoder: try FrameStreamCheck.check(bytes)
        case .nodeSession: try NodeSessionCheck.check(bytes)
        }
    }
}

/// One input. Named for libFuzzer's convention (its own `main`, which SwiftPM's entry point
/// replaces, still refers to this symbol).
@_cdecl("LLVMFuzzerTestOneInput")
public func LLVMFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size))
    do {
        try FuzzTarget.selected!.check(bytes)
    } catch {
        fatalError("\(FuzzTarget.selected!.rawValue) invariant broken: \(error)")
    }
    return 0
}
