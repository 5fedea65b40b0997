import FrameCore
import Testing

@Suite("State machines")
struct StateMachineTests {
    @Test("JobStatus allows exactly the documented transitions")
    func jobStatusTable() throws {
        let allowed: [JobStatus: Set<JobStatus>] = [
            .queued: [.processing, .failed, .cancelled],
            .processing: [.completed, .failed, .cancelled],
            .completed: [.expired],
            .failed: [.expired],
            .cancelled: [.expired],
            .expired: [],
        ]
        for from in JobStatus.allCases {
            for to in JobStatus.allCases {
                #expect(from.canTransition(to: to) == allowed[from]!.contains(to), "\(from) -> \(to)")
            }
        }
        #expect(JobStatus.predecessors(of: .cancelled) == [.queued, .processing])
        #expect(JobStatus.predecessors(of: .expired) == [.completed, .failed, .cancelled])
        #expect(try JobStatus.queued.transition(to: .processing) == .processing)
        #expect(throws: FrameFlowError.self) { try JobStatus.completed.transition(to: .processing) }
        #expect(JobStatus.allCases.filter(\.isSchedulable) == [.queued, .processing])
        #expect(JobStatus(rawValue: "QUEUED") == .queued)
    }

    @Test("SegmentState allows exactly the documented transitions")
    func segmentStateTable() {
        let allowed: [SegmentState: Set<SegmentState>] = [
            .pending: [.leased, .cancelled],
            .leased: [.pending, .done, .failed, .cancelled],
            .done: [], .failed: [], .cancelled: [],
        ]
        for from in SegmentState.allCases {
            for to in SegmentState.allCases {
                #expect(from.canTransition(to: to) == allowed[from]!.contains(to), "\(from) -> \(to)")
            }
            #expect(from.isTerminal == allowed[from]!.isEmpty)
        }
        #expect(SegmentState.predecessors(of: .done) == [.leased])
        #expect(SegmentState.predecessors(of: .cancelled) == [.pending, .leased])
    }
}
