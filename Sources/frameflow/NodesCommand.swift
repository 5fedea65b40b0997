import ArgumentParser
import FrameClient
import FrameCore
import Foundation

/// `frameflow nodes ...`: operator view and control of the cluster's nodes.
struct NodesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nodes",
        abstract: "List, drain, revoke and enable nodes (needs the admin token).",
        subcommands: [List.self, Action.Drain.self, Action.Revoke.self, Action.Enable.self])

    struct Connection: ParsableArguments {
        @Option(help: "Coordinator HTTP URL.")
        var url: String = ProcessInfo.processInfo.environment["FRAMEFLOW_URL"] ?? "http://127.0.0.1:8080"

        @Option(help: "Admin token (default: $FRAMEFLOW_ADMIN_TOKEN).")
        var token: String?

        func client() throws -> AdminClient {
            guard let base = URL(string: url) else { throw ValidationError("invalid --url '\(url)'") }
            return AdminClient(baseURL: base, token: token ?? ProcessInfo.processInfo.environment["FRAMEFLOW_ADMIN_TOKEN"])
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show every node: state, slots, active leases, frames/s, last heartbeat, version, labels, failures.")

        @OptionGroup var connection: Connection

        @Flag(help: "Print JSON instead of a table.")
        var json = false

        func run() async throws {
            let nodes: [AdminClient.Node]
            do { nodes = try await connection.client().nodes() } catch let e as FrameFlowError {
                throw CLIError(e)
            }
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                encoder.dateEncodingStrategy = .iso8601
                print(String(decoding: try encoder.encode(nodes), as: UTF8.self))
                return
            }
            let header = ["NAME", "STATE", "SLOTS", "LEASES", "FRAMES/S", "LAST HEARTBEAT", "VERSION", "LABELS", "FAILURES", "CONTRADICTED"]
            var rows = [header]
            for n in nodes {
                let ago = n.lastHeartbeatAt.map { String(format: "%.1fs ago", Date().timeIntervalSince($0)) } ?? "never"
                let labels = n.labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
                rows.append([n.name, n.state, "\(n.slots)", "\(n.activeLeases)", String(format: "%.1f", n.framesPerSecond),
                             ago, n.softwareVersion, labels.isEmpty ? "-" : labels, "\(n.recentFailures)",
                             "\(n.contradictedVerdicts)"])
            }
            let widths = header.indices.map { i in rows.map { $0[i].count }.max() ?? 0 }
            for row in rows {
                print(row.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }
                    .joined(separator: "  "))
            }
        }
    }

    enum Action {
        struct Drain: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Let NAME finish its current segments and take no new ones.")
            @Argument(help: "Node name.") var name: String
            @OptionGroup var connection: Connection
            @Flag(help: "Wait until the node has finished its current segments, then say so.")
            var wait = false
            @Option(help: "With --wait: give up after this many seconds (exit status 1).")
            var timeout: Double = 3600

            func run() async throws {
                try await perform("drain", name, connection, "draining: it finishes its current segments and takes no new ones")
                guard wait else { return }
                try await waitUntilDrained()
            }

            /// Polls the node list until NAME is drained (or holds nothing because it went offline).
            func waitUntilDrained() async throws {
                let client = try connection.client()
                let deadline = Date().addingTimeInterval(timeout)
                while Date() < deadline {
                    let nodes: [AdminClient.Node]
                    do { nodes = try await client.nodes() } catch { throw CLIError(error) }
                    guard let state = nodes.first(where: { $0.name == name })?.state else {
                        throw CLIError(FrameFlowError(.internalError, "node \(name) is no longer listed"))
                    }
                    if state == "drained" {
                        print("node \(name) drained: its segments are finished and it takes no new ones")
                        return
                    }
                    if state == "offline" || state == "revoked" {
                        print("node \(name) is \(state): it holds no segments")
                        return
                    }
                    try await Task.sleep(for: .milliseconds(500))
                }
                throw CLIError(FrameFlowError(.internalError, "node \(name) still holds segments after \(Int(timeout)) s"))
            }
        }

        struct Revoke: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Disconnect NAME now, requeue its leases and refuse its certificate from then on.")
            @Argument(help: "Node name.") var name: String
            @OptionGroup var connection: Connection
            func run() async throws { try await perform("revoke", name, connection, "revoked: disconnected and refused from now on") }
        }

        struct Enable: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Let a drained or revoked node NAME take work again.")
            @Argument(help: "Node name.") var name: String
            @OptionGroup var connection: Connection
            func run() async throws { try await perform("enable", name, connection, "enabled") }
        }

        static func perform(_ action: String, _ name: String, _ connection: Connection, _ done: String) async throws {
            do { try await connection.client().nodeAction(action, name: name) } catch let e as FrameFlowError {
                throw CLIError(e)
            }
            print("node \(name) \(done)")
        }
    }
}

/// A failure shown as one line `frameflow: CODE: message` with exit status 1.
struct CLIError: Error, CustomStringConvertible {
    let error: FrameFlowError
    init(_ error: FrameFlowError) { self.error = error }
    var description: String { "\(error.code.name): \(error.message)" }
}

func perform(_ action: String, _ name: String, _ connection: NodesCommand.Connection, _ done: String) async throws {
    try await NodesCommand.Action.perform(action, name, connection, done)
}
