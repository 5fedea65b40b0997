import FrameCore
import FrameWire
import Foundation
import NIOCore
import Testing
@testable import FrameCoordinator
@testable import FrameSimulator

/// The simulator's frames must be what a real node sends as far as the
/// coordinator can tell: its FrameCheck accepts them at the job's size.
@Suite struct CannedImageTests {
    func frame(_ format: ImageFormat, _ bytes: [UInt8], width: Int, height: Int) -> Frame {
        var buffer = ByteBuffer()
        buffer.writeBytes(bytes)
        return Frame(lease: LeaseRef(jobID: UUID(), segment: 0, epoch: 1), sampleIndex: 0, pts: 0, seconds: 0,
                     format: format, width: UInt32(width), height: UInt32(height), data: buffer)
    }

    @Test(arguments: ImageFormat.allCases, [100, 20_000, 200_000])
    func cannedImagesPassTheCoordinatorsCheck(format: ImageFormat, bytes: Int) {
        let image = CannedImage.make(format, width: 320, height: 240, bytes: bytes)
        #expect(abs(image.count - bytes) < 64 || bytes < 64)
        let expectation = FrameExpectation(format: format, size: (320, 240))
        #expect(FrameCheck.check(frame(format, image, width: 320, height: 240), against: expectation) == .valid)
        // And the check is not vacuous: the wrong size is refused.
        let other = FrameExpectation(format: format, size: (640, 480))
        #expect(FrameCheck.check(frame(format, image, width: 320, height: 240), against: other) != .valid)
    }
}
