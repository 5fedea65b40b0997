import Testing
@testable import FrameCore

@Suite struct RationalTests {
    @Test func parsesDecimalsExactly() {
        #expect(Rational(parsing: "0.1") == Rational(1, 10))
        #expect(Rational(parsing: "2.5") == Rational(5, 2))
        #expect(Rational(parsing: "1") == Rational(1, 1))
        #expect(Rational(parsing: ".5") == Rational(1, 2))
    }

    @Test func parsesFractionsReduced() {
        #expect(Rational(parsing: "1/3") == Rational(1, 3))
        #expect(Rational(parsing: "2/6") == Rational(1, 3))
        #expect(Rational(parsing: "30000/1001") == Rational(30000, 1001))
    }

    @Test(arguments: ["", "0", "-1", "1/0", "0/5", "abc", "1.2.3", "1e3", "1/-3", "0.0000001"])
    func rejectsInvalid(_ text: String) {
        #expect(Rational(parsing: text) == nil)
    }
}

@Suite struct ErrorCodeTests {
    @Test func namesAreUniqueAndRoundTrip() {
        let names = ErrorCode.allCases.map(\.name)
        #expect(Set(names).count == names.count)
        for code in ErrorCode.allCases {
            #expect(ErrorCode(name: code.name) == code)
        }
    }

    @Test func corruptInputIsNotRetryable() {
        #expect(!ErrorCode.corruptMedia.isRetryable)
        #expect(!ErrorCode.notMedia.isRetryable)
        #expect(ErrorCode.heartbeatTimeout.isRetryable)
        #expect(ErrorCode.decodeFailed.isRetryable)
    }
}
