import FrameCluster
import Foundation
import NIOCore
import NIOPosix
import Testing
@testable import FrameCoordinator

/// A connection the listener accepted but had not handed to a session when it stopped is closed,
/// not dropped: dropped unclosed, NIO trapped ("Deinited NIOAsyncWriter without calling
/// finish()") and took the whole coordinator down at shutdown (seen once in the suite).
@Suite struct NodeListenerShutdownTests {
    @Test func aConnectionAcceptedButNotYetServedIsClosedWhenTheListenerStops() async throws {
        let cluster = try TestCluster()
        let listener = try await NodeListener.bind(
            host: "127.0.0.1", port: 0, tls: try TLSContexts.coordinator(cluster.coordinatorTLS), registry: cluster.registry,
            work: nil, settings: cluster.settings, logger: cluster.logger)
        // Accepted and wrapped (no byte needed), while nothing serves the listener yet.
        let client = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: listener.port).get()
        try await TestCluster.eventually("the connection was accepted") { listener.unclaimed.count == 1 }
        // The listener runs in a task cancelled before it takes anything from its accept queue.
        await withTaskGroup(of: Void.self) { group in
            group.cancelAll()
            group.addTask { try? await listener.run() }
        }
        #expect(listener.unclaimed.count == 0)
        // The coordinator closed it: the client sees the end.
        try await TestCluster.eventually("the client saw the connection close") { !client.isActive }
    }
}
