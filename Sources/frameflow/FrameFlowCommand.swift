import ArgumentParser
import FrameCluster

/// `frameflow`: the client and operator command line.
@main
struct FrameFlowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "frameflow",
        abstract: "FrameFlow client and operator tool.",
        version: FrameFlowVersion.current,
        subcommands: [
            ExtractCommand.self, LoginCommand.self, LogoutCommand.self, UploadCommand.self, VideosCommand.self,
            WatchCommand.self, CertsCommand.self, NodesCommand.self,
        ])
}
