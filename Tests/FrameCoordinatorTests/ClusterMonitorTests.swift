import Foundation
import Testing
@testable import FrameCoordinator

/// The operators' cluster documents (`GET /admin/cluster`, `GET /admin/events`).
@Suite struct ClusterMonitorTests {
    /// Job ids in the recent events are written lower-case, as in every other body (RFC 9562).
    @Test func eventJobIdsAreLowerCase() throws {
        let job = UUID()
        let event = ClusterMonitor.EventView(id: 1, at: Date(timeIntervalSince1970: 0), job: job, kind: "COMPLETED",
                                             segment: nil, node: "node-1", reason: nil)
        let json = ClusterMonitor.json(ClusterMonitor.Snapshot(sample: nil, history: [], nodeHistory: [:], events: [event]))
        #expect(json.contains("\"job\":\"\(job.uuidString.lowercased())\""), "\(json)")
        #expect(!json.contains(job.uuidString))
    }
}
