import Foundation

/// A joinable thread: decoding blocks, so it gets a real thread rather than a task.
final class WorkerThread {
    private let thread: Thread
    private let done = DispatchSemaphore(value: 0)

    init(_ body: @escaping @Sendable () -> Void) {
        let done = self.done
        thread = Thread {
            body()
            done.signal()
        }
        thread.stackSize = 8 << 20
    }

    func start() { thread.start() }
    func join() { done.wait() }
}
