import Foundation
import Testing
@testable import FrameObjectStore

/// Signature Version 4 against AWS's published vectors (Fixtures/README.md says where each is from).
@Suite struct SigV4Tests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
    static let suiteDir = fixtures.appendingPathComponent("aws-sig-v4-test-suite")
    static let suiteCases: [String] = ((try? FileManager.default.contentsOfDirectory(atPath: suiteDir.path)) ?? [])
        .filter { !$0.contains(".") && $0 != "LICENSE" && $0 != "NOTICE" }.sorted()

    static let suiteCredentials = S3Credentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    static let suiteDate = Date(timeIntervalSince1970: 1_440_938_160)  // 2015-08-30T12:36:00Z

    /// A `.req` file: request line, `Name:value` headers, blank line, body.
    static func parseRequest(_ text: String) -> (SigV4Request, body: String) {
        var lines = text.components(separatedBy: "\n")
        let requestLine = lines.removeFirst().split(separator: " ")
        let method = String(requestLine[0])
        // The target may contain spaces (never in the kept cases); the last word is the version.
        let target = requestLine.dropFirst().dropLast().joined(separator: " ")
        var headers: [(name: String, value: String)] = []
        while let line = lines.first, !line.isEmpty {
            lines.removeFirst()
            let colon = line.firstIndex(of: ":")!
            headers.append((name: String(line[..<colon]), value: String(line[line.index(after: colon)...])))
        }
        if !lines.isEmpty { lines.removeFirst() }
        let body = lines.joined(separator: "\n")
        let parts = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        let path = String(parts[0]).removingPercentEncoding!
        var query: [(name: String, value: String)] = []
        if parts.count == 2 {
            for item in parts[1].split(separator: "&") {
                let kv = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                query.append((name: String(kv[0]).removingPercentEncoding!, value: kv.count > 1 ? String(kv[1]).removingPercentEncoding! : ""))
            }
        }
        return (SigV4Request(method: method, path: path, query: query, headers: headers), body)
    }

    @Test func theSuiteIsPresent() {
        #expect(Self.suiteCases.count == 22)
    }

    @Test(arguments: suiteCases)
    func awsTestSuite(_ name: String) throws {
        let dir = Self.suiteDir.appendingPathComponent(name)
        func read(_ ext: String) throws -> String {
            try String(contentsOf: dir.appendingPathComponent("\(name).\(ext)"), encoding: .utf8)
        }
        let (request, body) = Self.parseRequest(try read("req"))
        let signer = SigV4(region: "us-east-1", service: "service")
        let payloadHash = SigV4.sha256Hex(Data(body.utf8))
        let signed = signer.sign(request, payloadHash: payloadHash, credentials: Self.suiteCredentials, date: Self.suiteDate)
        #expect(signed.canonicalRequest == (try read("creq")), "canonical request of \(name)")
        // Two cases' .sts and .authz were computed from an earlier form of their request (Fixtures/README.md).
        let signedAsPublished = Self.suiteErrata[name].map {
            signer.sign($0(request), payloadHash: payloadHash, credentials: Self.suiteCredentials, date: Self.suiteDate)
        } ?? signed
        #expect(signedAsPublished.stringToSign == (try read("sts")), "string to sign of \(name)")
        let authz = try read("authz")
        if Self.suiteErrata[name] == nil {
            #expect(signed.authorization == authz, "Authorization of \(name)")
        } else {
            // The published header's SignedHeaders list was edited along with the request; its signature was not.
            #expect(authz.hasSuffix("Signature=" + signedAsPublished.signature), "signature of \(name)")
        }
    }

    /// AWS added `Content-Length` to these two requests (and `charset=utf-8` for `utf8`) after
    /// computing their string to sign and signature: the published `.creq` matches the published
    /// `.req`, while `.sts`/`.authz` match the request without `Content-Length` (hashes checked by hand:
    /// SHA-256 of each variant's canonical request equals the last line of its `.sts`).
    static let suiteErrata: [String: @Sendable (SigV4Request) -> SigV4Request] = [
        "post-x-www-form-urlencoded": { r in
            var r = r
            r.headers.removeAll { $0.name.lowercased() == "content-length" }
            return r
        },
        "post-x-www-form-urlencoded-parameters": { r in
            var r = r
            r.headers.removeAll { $0.name.lowercased() == "content-length" }
            r.headers = r.headers.map { $0.name.lowercased() == "content-type" ? (name: $0.name, value: $0.value.replacingOccurrences(of: "charset=utf-8", with: "charset=utf8")) : $0 }
            return r
        },
    ]

    struct S3Example: Sendable, CustomStringConvertible {
        var name, method, path: String
        var query: [(name: String, value: String)]
        var headers: [(name: String, value: String)]
        var payload: String?
        var signature: String
        var description: String { name }
    }

    static let s3Examples: [S3Example] = {
        let text = (try? String(contentsOf: fixtures.appendingPathComponent("s3-examples.txt"), encoding: .utf8)) ?? ""
        func pairs(_ s: Substring) -> [(name: String, value: String)] {
            s.split(separator: ";").map {
                let kv = $0.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                return (name: String(kv[0]), value: kv.count > 1 ? String(kv[1]) : "")
            }
        }
        return text.split(separator: "\n").filter { !$0.hasPrefix("#") }.map { line in
            let f = line.split(separator: "|", omittingEmptySubsequences: false)
            return S3Example(
                name: String(f[0]), method: String(f[1]), path: String(f[2]), query: pairs(f[3]), headers: pairs(f[4]),
                payload: f[5] == "-" ? nil : String(f[5]), signature: String(f[6]))
        }
    }()

    static let docCredentials = S3Credentials(accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    static let docDate = Date(timeIntervalSince1970: 1_369_353_600)  // 2013-05-24T00:00:00Z

    @Test func theS3ExamplesArePresent() {
        #expect(Self.s3Examples.count == 5)
    }

    @Test(arguments: s3Examples.filter { !$0.name.hasPrefix("presign-") })
    func s3DocumentationHeaderExamples(_ example: S3Example) {
        let payloadHash = example.payload.map { SigV4.sha256Hex(Data($0.utf8)) } ?? SigV4.emptyPayloadHash
        let request = SigV4Request(
            method: example.method, path: example.path, query: example.query,
            headers: example.headers + [(name: "x-amz-content-sha256", value: payloadHash)])
        let signed = SigV4(region: "us-east-1").sign(request, payloadHash: payloadHash, credentials: Self.docCredentials, date: Self.docDate)
        #expect(signed.signature == example.signature, "\(example.name): \(signed.canonicalRequest)")
    }

    @Test func s3DocumentationPresignedGet() throws {
        let example = try #require(Self.s3Examples.first { $0.name == "presign-get-object" })
        let request = SigV4Request(method: example.method, path: example.path, headers: example.headers)
        let signed = SigV4(region: "us-east-1").presign(request, expires: 86400, credentials: Self.docCredentials, date: Self.docDate)
        // The page prints the canonical request and the string to sign as well.
        #expect(signed.stringToSign == """
            AWS4-HMAC-SHA256
            20130524T000000Z
            20130524/us-east-1/s3/aws4_request
            3bfa292879f6447bbcda7001decf97f4a54dc650c8942174ae0a9121cf58ad04
            """)
        #expect(signed.signature == example.signature)
        #expect(signed.presignedQuery == "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=\(example.signature)")
    }

    @Test func encodingFollowsS3Rules() {
        #expect(SigV4.uriEncode("a b+c/d", keepSlash: true) == "a%20b%2Bc/d")
        #expect(SigV4.uriEncode("a b+c/d", keepSlash: false) == "a%20b%2Bc%2Fd")
        #expect(SigV4.uriEncode("ü~", keepSlash: false) == "%C3%BC~")
        #expect(SigV4.canonicalURI("") == "/")
        #expect(SigV4.encodedTarget(path: "/b/k 1", query: [(name: "uploadId", value: "x/y"), (name: "partNumber", value: "2")])
            == "/b/k%201?partNumber=2&uploadId=x%2Fy")
    }

    @Test func credentialsNeverPrintTheSecret() {
        let c = S3Credentials(accessKeyID: "AKID", secretAccessKey: "very-secret-value")
        #expect(!"\(c)".contains("very-secret-value"))
        #expect(!String(reflecting: c).contains("very-secret-value"))
    }
}
