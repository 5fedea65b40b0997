/// Timing and identity parameters every node session uses, from `cluster.yaml`.
public struct SessionSettings: Sendable {
    public var coordinatorID: String
    public var heartbeatInterval: Duration
    public var heartbeatTimeout: Duration
    public var maxFrameLength: Int

    public init(coordinatorID: String, heartbeatInterval: Duration, heartbeatTimeout: Duration, maxFrameLength: Int) {
        self.coordinatorID = coordinatorID
        self.heartbeatInterval = heartbeatInterval
        self.heartbeatTimeout = heartbeatTimeout
        self.maxFrameLength = maxFrameLength
    }
}
