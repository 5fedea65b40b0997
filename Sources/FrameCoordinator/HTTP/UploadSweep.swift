import FrameAPI
import Logging
import ServiceLifecycle

/// Runs the API's resumable-upload expiry (``FrameAPIServer/sweepExpiredUploads()``) as a
/// service: unfinished uploads past their expiry lose their bytes.
struct UploadSweep: Service {
    let api: FrameAPIServer
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    let expired = try await api.sweepExpiredUploads()
                    if expired > 0 { logger.info("expired unfinished uploads", metadata: ["count": "\(expired)"]) }
                } catch {
                    logger.error("upload expiry sweep failed", metadata: ["error": "\(error)"])
                }
                try? await Task.sleep(for: api.uploadSweepInterval)
            }
        }
    }
}
