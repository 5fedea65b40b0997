import Prometheus

extension CoordinatorMetrics {
    /// Sets the server-push gauges: `frameflow_event_streams{state="open"|"limit"}` and
    /// `frameflow_event_streams_refused` (refused since start, because the limit was reached).
    /// The registry hands back the same gauge for the same name and labels, so this is cheap.
    public func setEventStreams(open: Int, limit: Int, refused: Int) {
        let help = "Server-push (text/event-stream) connections: open now, and the limit"
        registry.makeGauge(name: "frameflow_event_streams", labels: [("state", "open")], help: help).set(Double(open))
        registry.makeGauge(name: "frameflow_event_streams", labels: [("state", "limit")], help: help).set(Double(limit))
        registry.makeGauge(name: "frameflow_event_streams_refused", help: "Event streams refused at the limit since start")
            .set(Double(refused))
    }
}
