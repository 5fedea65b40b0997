import ArgumentParser

/// `frameflow`: the client and operator command line.
@main
struct FrameFlowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "frameflow",
        abstract: "FrameFlow client and operator tool.",
        version: "0.1.0",
        subcommands: [
            ExtractCommand.self, LoginCommand.self, LogoutCommand.self, UploadCommand.self, VideosCommand.self,
            WatchCommand.self, CertsCommand.self, NodesCommand.self,
        ])
}
