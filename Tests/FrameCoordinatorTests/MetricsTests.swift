import FrameCore
import FrameStore
import Foundation
import FrameTestSupport
import Testing
@testable import FrameCoordinator
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// `GET /metrics`: the coordinator's counters move with the work it does, and
/// each coordinator in a process counts only its own.
@Suite(.serialized, .timeLimit(.minutes(5))) struct MetricsTests {
    /// The value of one series (`name` or `name{labels}`) in a Prometheus text exposition.
    static func value(_ series: String, in text: String) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(series + " ") {
            return Double(line.dropFirst(series.count + 1).trimmingCharacters(in: .whitespaces))
        }
        return nil
    }

    static func scrape(_ port: Int) async throws -> (String, String?) {
        let (data, response) = try await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(port)/metrics")!)
        let http = try #require(response as? HTTPURLResponse)
        #expect(http.statusCode == 200)
        return (String(decoding: data, as: UTF8.self), http.value(forHTTPHeaderField: "Content-Type"))
    }

    @Test func scrapeAfterAJobShowsItsWork() async throws {
        let h = try await PipelineTests.makeHarness()
        let agent = try PipelineTests.startAgent(h, name: "metrics-a", slots: 2)
        defer { agent.cancel() }
        let video = try Fixtures.video(seconds: 8, name: "metrics.mp4")
        let job = try await PipelineTests.submit(h, video: video, rate: Rational(1, 1))
        let done = try await PipelineTests.waitForStatus(h, job.id, [.completed, .failed])
        #expect(done.status == .completed)

        let (text, contentType) = try await Self.scrape(h.httpPort)
        #expect(contentType?.hasPrefix("text/plain") == true)
        #expect(Self.value("frameflow_frames_received_total", in: text) == Double(done.frameCount))
        #expect(Self.value("frameflow_segments_leased_total", in: text).map { $0 >= Double(done.segmentCount) } == true)
        #expect(Self.value("frameflow_upload_bytes_total", in: text) == Double(done.sizeBytes))
        #expect(Self.value(#"frameflow_jobs{status="COMPLETED"}"#, in: text) == 1)
        #expect(Self.value(#"frameflow_jobs{status="QUEUED"}"#, in: text) == 0)
        #expect(Self.value(#"frameflow_nodes{state="online"}"#, in: text) == 1)
        #expect(Self.value("frameflow_lease_claim_duration_seconds_count", in: text).map { $0 >= 1 } == true)
        #expect(text.contains("frameflow_lease_claim_duration_seconds_bucket"))

        // A second coordinator in the same process starts from zero.
        let other = try await PipelineTests.makeHarness()
        let (fresh, _) = try await Self.scrape(other.httpPort)
        #expect(Self.value("frameflow_frames_received_total", in: fresh) == 0)
        #expect(Self.value(#"frameflow_jobs{status="COMPLETED"}"#, in: fresh) == 0)
        await other.stop()
        await h.stop()
    }

    @Test func requeuesAndFencesAreCountedByReason() {
        let a = CoordinatorMetrics(), b = CoordinatorMetrics()
        a.requeued(2, .nodeLost)
        a.requeued(1, .leaseExpired)
        a.requeued(0, .segmentFailed)
        a.segmentsFenced.increment()
        a.recordClaim(.milliseconds(3))
        let text = a.exposition()
        #expect(Self.value(#"frameflow_segments_requeued_total{reason="node_lost"}"#, in: text) == 2)
        #expect(Self.value(#"frameflow_segments_requeued_total{reason="lease_expired"}"#, in: text) == 1)
        #expect(Self.value(#"frameflow_segments_requeued_total{reason="segment_failed"}"#, in: text) == 0)
        #expect(Self.value("frameflow_segments_fenced_total", in: text) == 1)
        #expect(Self.value(#"frameflow_lease_claim_duration_seconds_bucket{le="0.005"}"#, in: text) == 1)
        #expect(Self.value(#"frameflow_lease_claim_duration_seconds_bucket{le="0.002"}"#, in: text) == 0)
        // Registries are per instance.
        #expect(Self.value("frameflow_segments_fenced_total", in: b.exposition()) == 0)
    }
}
