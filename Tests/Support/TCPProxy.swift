import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A loopback TCP relay that a test can cut: every connection through it is
/// closed at once (both peers see EOF, as when a network path dies and a
/// middlebox resets it), and new connections are refused until `resume()`.
///
/// It relays bytes only, so it works for TLS and any protocol. Plain threads
/// and blocking sockets keep it independent of the code under test.
public final class TCPProxy: @unchecked Sendable {
    /// The port to point clients at (127.0.0.1).
    public let port: Int
    private let targetPort: Int
    private let listener: Int32
    private let lock = NSLock()
    private var isCut = false
    private var toDrop = 0
    private var stopped = false
    private var sockets: Set<Int32> = []
    /// Connections accepted and relayed so far.
    public private(set) var connectionsRelayed = 0

    /// Listens on an ephemeral loopback port and relays to 127.0.0.1:`targetPort`.
    public init(targetPort: Int) throws {
        self.targetPort = targetPort
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ProxyError("socket: \(errno)") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = Self.loopback(port: 0)
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        guard bound == 0, listen(fd, 64) == 0 else { close(fd); throw ProxyError("bind/listen: \(errno)") }
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        listener = fd
        port = Int(UInt16(bigEndian: addr.sin_port))
        let thread = Thread { [self] in acceptLoop() }
        thread.name = "tcp-proxy-accept"
        thread.start()
    }

    /// Closes every relayed connection and refuses new ones until ``resume()``.
    public func cut() {
        let open: Set<Int32> = lock.withLock {
            isCut = true
            return sockets
        }
        // shutdown wakes the relay threads blocked in read; they close the sockets.
        for fd in open { shutdown(fd, Int32(SHUT_RDWR)) }
    }

    /// Closes the next `count` connections as soon as they are accepted, then relays again: a
    /// server that resets a few connections under load.
    public func dropNext(_ count: Int) {
        lock.withLock { toDrop = count }
    }

    /// Accepts and relays connections again.
    public func resume() {
        lock.withLock { isCut = false }
    }

    /// Stops listening and closes everything.
    public func stop() {
        let first: Bool = lock.withLock {
            defer { stopped = true }
            return !stopped
        }
        guard first else { return }
        cut()
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }

    deinit { stop() }

    private func acceptLoop() {
        while true {
            let client = accept(listener, nil, nil)
            if client < 0 {
                if errno == EINTR { continue }
                return
            }
            let refuse: Bool = lock.withLock {
                if toDrop > 0 {
                    toDrop -= 1
                    return true
                }
                return isCut || stopped
            }
            if refuse {
                close(client)
                continue
            }
            let upstream = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var addr = Self.loopback(port: targetPort)
            let connected = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(upstream, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            guard connected == 0 else {
                close(upstream)
                close(client)
                continue
            }
            var one: Int32 = 1
            setsockopt(client, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            setsockopt(upstream, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            lock.withLock {
                sockets.insert(client)
                sockets.insert(upstream)
                connectionsRelayed += 1
            }
            let pair = Pair(a: client, b: upstream, proxy: self)
            for (from, to) in [(client, upstream), (upstream, client)] {
                let thread = Thread { pair.pump(from: from, to: to) }
                thread.name = "tcp-proxy-relay"
                thread.start()
            }
        }
    }

    fileprivate func forget(_ fds: [Int32]) {
        lock.withLock { for fd in fds { sockets.remove(fd) } }
    }

    private static func loopback(port: Int) -> sockaddr_in {
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = UInt16(port).bigEndian
        return addr
    }

    struct ProxyError: Error, CustomStringConvertible {
        var description: String
        init(_ d: String) { description = d }
    }

    /// Two relayed sockets; the second pump to finish closes both.
    private final class Pair: @unchecked Sendable {
        let a: Int32
        let b: Int32
        weak var proxy: TCPProxy?
        private let lock = NSLock()
        private var finished = 0

        init(a: Int32, b: Int32, proxy: TCPProxy) {
            self.a = a
            self.b = b
            self.proxy = proxy
        }

        func pump(from: Int32, to: Int32) {
            var buffer = [UInt8](repeating: 0, count: 64 * 1024)
            outer: while true {
                let n = buffer.withUnsafeMutableBytes { read(from, $0.baseAddress, $0.count) }
                if n <= 0 { break }
                var offset = 0
                while offset < n {
                    let w = buffer.withUnsafeBytes { send(to, $0.baseAddress! + offset, n - offset, Int32(MSG_NOSIGNAL)) }
                    if w <= 0 { break outer }
                    offset += w
                }
            }
            // Either direction ending ends the connection for both peers.
            shutdown(a, Int32(SHUT_RDWR))
            shutdown(b, Int32(SHUT_RDWR))
            let last: Bool = lock.withLock {
                finished += 1
                return finished == 2
            }
            if last {
                proxy?.forget([a, b])
                close(a)
                close(b)
            }
        }
    }
}
