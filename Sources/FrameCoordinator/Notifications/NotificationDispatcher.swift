import FrameCluster
import FrameCore
import FrameNotify
import FrameStore
import Foundation
import Logging
import ServiceLifecycle

/// Delivers the notification outbox: e-mail to the job's owner and signed
/// webhooks, retried with exponential backoff, recorded row by row.
///
/// It runs beside the scheduler and never in its way: the outbox rows are
/// written by the job's final status change (same transaction), so a job
/// finishes whether or not any receiver is reachable, and a restarted
/// coordinator picks up whatever was still pending. Each delivery is bounded
/// by a timeout; a batch's deliveries run concurrently, so one slow receiver
/// does not hold back the others. Rows for channels that are not configured,
/// or events not subscribed to, are closed as `skipped`.
public struct NotificationDispatcher: Service {
    let store: NotificationStore
    let config: NotificationConfig
    let logger: Logger
    let deliveryTimeout: Duration

    public init(database: Database, config: NotificationConfig, logger: Logger) {
        self.store = NotificationStore(database: database)
        self.config = config
        self.logger = logger
        self.deliveryTimeout = config.timeout
    }

    /// Delay before attempt `attempts + 1`, after `attempts` failures: base, 2*base, 4*base... capped.
    static func retryDelay(afterFailures attempts: Int, base: Duration, max: Duration) -> Duration {
        var delay = base
        for _ in 1..<Swift.max(1, Swift.min(attempts, 40)) {
            delay = delay * 2
            if delay >= max { return max }
        }
        return Swift.min(delay, max)
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown { await self.loop() }
    }

    /// Polls the outbox until cancelled; polls faster when retries are short.
    func loop() async {
        let idle = Swift.max(.milliseconds(50), Swift.min(.seconds(1), config.retryBase / 4))
        while !Task.isCancelled {
            let delivered = await dispatchDue()
            if delivered == 0 { try? await Task.sleep(for: idle) }
        }
    }

    /// One pass: takes the due rows and settles each; returns how many it took.
    @discardableResult
    func dispatchDue() async -> Int {
        let due: [PendingNotification]
        do {
            // Held for longer than a delivery can take, so no other pass takes them meanwhile.
            due = try await store.claimDue(limit: 16, hold: deliveryTimeout * 2 + .seconds(5))
        } catch {
            logger.warning("notification outbox unavailable", metadata: ["error": "\(error)"])
            return 0
        }
        await withDiscardingTaskGroup { group in
            for notification in due { group.addTask { await self.settle(notification) } }
        }
        return due.count
    }

    private func settle(_ n: PendingNotification) async {
        let meta: Logger.Metadata = [
            "job": "\(n.jobID.uuidString.lowercased())", "channel": "\(n.channel)", "event": "\(n.event)",
            "attempt": "\(n.attempts + 1)",
        ]
        if let reason = skipReason(n) {
            try? await store.markSkipped(id: n.id, reason: reason)
            return
        }
        do {
            try await deliver(n)
            try await store.markDelivered(id: n.id)
            logger.info("notification delivered", metadata: meta)
        } catch {
            let failures = n.attempts + 1
            let retry = failures >= config.maxAttempts
                ? nil : Self.retryDelay(afterFailures: failures, base: config.retryBase, max: config.retryMax)
            logger.warning(retry == nil ? "notification given up" : "notification failed; will retry", metadata: meta.merging([
                "error": "\(error)", "retry_in": "\(retry.map { "\($0)" } ?? "never")",
            ]) { a, _ in a })
            do { try await store.markFailed(id: n.id, error: "\(error)", retryAfter: retry) } catch {
                logger.error("cannot record a notification attempt", metadata: meta.merging(["error": "\(error)"]) { a, _ in a })
            }
        }
    }

    private func skipReason(_ n: PendingNotification) -> String? {
        guard let event = NotificationConfig.Event(rawValue: n.event), config.on.contains(event) else {
            return "event \(n.event) not subscribed (coordinator.notifications.on)"
        }
        switch n.channel {
        case "email": return config.smtp == nil ? "no SMTP server configured" : nil
        case "webhook": return config.webhook == nil ? "no webhook configured" : nil
        default: return "unknown channel \(n.channel)"
        }
    }

    private func deliver(_ n: PendingNotification) async throws {
        let message = JobNotification(
            event: "job.\(n.event)", jobId: n.jobID, status: n.status.rawValue, originalFilename: n.originalFilename,
            frameCount: n.frameCount, errorCode: n.errorCode, errorMessage: n.errorMessage, occurredAt: n.finishedAt)
        switch n.channel {
        case "email":
            guard let smtp = config.smtp else { return }
            let client = SMTPClient(
                settings: SMTPSettings(host: smtp.host, port: smtp.port, from: smtp.from, username: smtp.username,
                                       password: smtp.password, implicitTLS: smtp.implicitTLS),
                timeout: deliveryTimeout)
            try await client.send(to: n.ownerEmail, subject: message.subject, body: message.text)
        default:
            guard let webhook = config.webhook else { return }
            let client = WebhookClient(settings: WebhookSettings(url: webhook.url, secret: webhook.secret), timeout: deliveryTimeout)
            try await client.post(body: try message.jsonBody())
        }
    }
}
