import FrameCore
import Foundation
import Synchronization
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Streams one GET to a file as it arrives (the ZIP is never held in memory), reporting bytes so
/// far and the total when known. The body goes to `<file>.part`, renamed over `file` once complete,
/// so an interrupted download never looks finished. Writes happen on URLSession's delegate queue.
enum FileDownload {
    static func run(_ request: URLRequest, to file: URL, progress: @escaping @Sendable (Int64, Int64?) -> Void) async throws -> Int64 {
        let part = file.appendingPathExtension("part")
        let delegate = try Delegate(part: part, progress: progress)
        let session = URLSession(configuration: .default, delegate: delegate, delegateQueue: nil)
        defer { session.finishTasksAndInvalidate() }
        let written: Int64 = try await withCheckedThrowingContinuation { continuation in
            delegate.continuation.withLock { $0 = continuation }
            session.dataTask(with: request).resume()
        }
        if FileManager.default.fileExists(atPath: file.path) { try FileManager.default.removeItem(at: file) }
        try FileManager.default.moveItem(at: part, to: file)
        return written
    }

    final class Delegate: NSObject, URLSessionDataDelegate, @unchecked Sendable {
        let part: URL
        let handle: FileHandle
        let progress: @Sendable (Int64, Int64?) -> Void
        let continuation = Mutex<CheckedContinuation<Int64, any Error>?>(nil)
        // Touched only on the session's (serial) delegate queue.
        var written: Int64 = 0
        var expected: Int64?
        var status = 0
        var errorBody = Data()
        var retryAfter: String?
        var writeError: (any Error)?

        init(part: URL, progress: @escaping @Sendable (Int64, Int64?) -> Void) throws {
            self.part = part
            self.progress = progress
            FileManager.default.createFile(atPath: part.path, contents: nil)
            handle = try FileHandle(forWritingTo: part)
        }

        func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
                        completionHandler: @escaping (URLSession.ResponseDisposition) -> Void) {
            let http = response as? HTTPURLResponse
            status = http?.statusCode ?? 0
            retryAfter = http?.value(forHTTPHeaderField: "Retry-After")
            expected = response.expectedContentLength >= 0 ? response.expectedContentLength : nil
            completionHandler(.allow)
        }

        func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
            guard status == 200 else { errorBody.append(data.prefix(64 * 1024 - errorBody.count)); return }
            do { try handle.write(contentsOf: data) } catch {
                writeError = error
                dataTask.cancel()
                return
            }
            written += Int64(data.count)
            progress(written, expected)
        }

        func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: (any Error)?) {
            try? handle.close()
            let result: Result<Int64, any Error>
            if let writeError {
                result = .failure(writeError)
            } else if let error {
                result = .failure(error)
            } else if status != 200 {
                result = .failure(APIFailure.from(status: status, body: errorBody, retryAfter: retryAfter))
            } else {
                result = .success(written)
            }
            if case .failure = result { try? FileManager.default.removeItem(at: part) }
            continuation.withLock { $0?.resume(with: result); $0 = nil }
        }
    }
}
