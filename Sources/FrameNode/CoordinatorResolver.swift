import FrameCluster
import Foundation
import NIOCore
import NIOPosix

/// Turns a coordinator's configured host into the addresses to dial (the seam that lets a test
/// resolve a name to several loopback addresses without touching /etc/hosts).
public protocol CoordinatorResolver: Sendable {
    /// The addresses `host` stands for, in the order to try them; empty or a throw when it
    /// cannot be resolved now.
    func addresses(of host: String) async throws -> [String]
}

/// The system resolver (getaddrinfo through Foundation's `Host`, so /etc/hosts and DNS as the
/// machine is configured), run on a thread pool because it blocks. An IP literal is itself.
/// IPv4 addresses come before IPv6 ones, each in the resolver's order.
public struct SystemCoordinatorResolver: CoordinatorResolver {
    let threadPool: NIOThreadPool

    public init(threadPool: NIOThreadPool = .singleton) { self.threadPool = threadPool }

    public func addresses(of host: String) async throws -> [String] {
        if IPAddressCheck.isIPAddress(host) { return [host] }
        let all = try await threadPool.runIfActive { Host(name: host).addresses }
        let v4 = all.filter { !$0.contains(":") }
        return v4 + all.filter { $0.contains(":") }
    }
}
