import Foundation
import Testing
@testable import FrameCluster

/// `coordinator.notifications`: parsed from the file, and every mistake names its key.
@Suite struct NotificationConfigTests {
    func load(_ yaml: String) throws -> NotificationConfig {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ff-notify-config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let url = dir.appendingPathComponent("cluster.yaml")
        try yaml.write(to: url, atomically: true, encoding: .utf8)
        return try ClusterConfig.load(file: url, environment: [:]).coordinator.notifications
    }

    func problemKey(_ overrides: [String]) -> String? {
        do {
            _ = try ClusterConfig.load(file: nil, environment: [:], overrides: overrides)
            return nil
        } catch {
            return error.key
        }
    }

    @Test func fullSectionFromTheFile() throws {
        let n = try load("""
        coordinator:
          notifications:
            on: [failed, completed]
            smtp:
              host: mail.example.org
              port: 2525
              from: frameflow@example.org
              username: bot
              password: hunter2
            webhook:
              url: https://hooks.example.org/frameflow?x=1
              secret: 0123456789abcdef-secret
            retry_base: 1s
            retry_max: 1m
            max_attempts: 5
        """)
        #expect(n.on == [.failed, .completed])
        #expect(n.smtp?.host == "mail.example.org")
        #expect(n.smtp?.port == 2525)
        #expect(n.smtp?.username == "bot")
        #expect(n.webhook?.url.absoluteString == "https://hooks.example.org/frameflow?x=1")
        #expect(n.retryBase == .seconds(1))
        #expect(n.retryMax == .seconds(60))
        #expect(n.maxAttempts == 5)
    }

    @Test func defaultsNotifyNobody() throws {
        let n = try ClusterConfig.load(file: nil, environment: [:]).coordinator.notifications
        #expect(n.on == [.failed])
        #expect(n.smtp == nil)
        #expect(n.webhook == nil)
    }

    @Test func mistakesNameTheirKey() {
        let p = "coordinator.notifications."
        #expect(problemKey([p + "on=failed,exploded"]) == p + "on")
        #expect(problemKey([p + "smtp.host=mail"]) == p + "smtp.from")
        #expect(problemKey([p + "smtp.host=mail", p + "smtp.from=not-an-address"]) == p + "smtp.from")
        #expect(problemKey([p + "smtp.host=mail", p + "smtp.from=a@b", p + "smtp.port=70000"]) == p + "smtp.port")
        #expect(problemKey([p + "smtp.host=mail", p + "smtp.from=a@b", p + "smtp.username=u"]) == p + "smtp.password")
        #expect(problemKey([p + "webhook.url=ftp://x/y", p + "webhook.secret=0123456789abcdef"]) == p + "webhook.url")
        #expect(problemKey([p + "webhook.url=http://x/y"]) == p + "webhook.secret")
        #expect(problemKey([p + "webhook.url=http://x/y", p + "webhook.secret=short"]) == p + "webhook.secret")
        #expect(problemKey([p + "retry_base=0s"]) == p + "retry_base")
        #expect(problemKey([p + "retry_base=1m", p + "retry_max=1s"]) == p + "retry_max")
        #expect(problemKey([p + "max_attempts=0"]) == p + "max_attempts")
        #expect(problemKey([p + "smtp.bogus=1"]) == p + "smtp.bogus")
    }
}
