import Foundation
import Testing
@testable import FrameObjectStore

/// The client's pure parts: addressing, configuration checks, part sizing, XML answers.
@Suite struct S3ClientUnitTests {
    static let credentials = S3Credentials(accessKeyID: "AK", secretAccessKey: "SK")

    @Test func pathStyleAndVirtualHostedAddressing() {
        var c = S3Configuration(endpoint: URL(string: "http://127.0.0.1:8080")!, region: "us-east-1", bucket: "media", prefix: "ff/", credentials: Self.credentials)
        #expect(c.hostHeader == "127.0.0.1:8080")
        #expect(c.path(forStoreKey: "ff/a.zip") == "/media/ff/a.zip")
        #expect(c.path(forStoreKey: nil) == "/media")
        c.endpoint = URL(string: "https://s3.eu-west-1.amazonaws.com")!
        c.pathStyle = false
        #expect(c.hostHeader == "media.s3.eu-west-1.amazonaws.com")
        #expect(c.path(forStoreKey: "ff/a.zip") == "/ff/a.zip")
        #expect(c.path(forStoreKey: nil) == "/")
    }

    @Test func presignedURLCarriesTheSignedHostAndNoSecret() throws {
        let c = S3Configuration(endpoint: URL(string: "http://127.0.0.1:8080")!, region: "us-east-1", bucket: "media", prefix: "ff/", credentials: Self.credentials)
        let client = try S3Client(configuration: c, now: { Date(timeIntervalSince1970: 1_369_353_600) })
        let url = client.presignedGetURL("jobs/x y.zip", expires: 900)
        #expect(url.absoluteString.hasPrefix("http://127.0.0.1:8080/media/ff/jobs/x%20y.zip?"))
        #expect(url.absoluteString.contains("X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Signature="))
        #expect(!url.absoluteString.contains("SK"))
    }

    @Test func configurationErrorsNameTheSetting() {
        func check(_ mutate: (inout S3Configuration) -> Void, _ fragment: String) {
            var c = S3Configuration(endpoint: URL(string: "http://127.0.0.1:8080")!, region: "us-east-1", bucket: "media", credentials: Self.credentials)
            mutate(&c)
            #expect(throws: S3ConfigError.self) { try c.validate() }
            do { try c.validate() } catch { #expect(error.description.contains(fragment), "\(error)") }
        }
        check({ $0.endpoint = URL(string: "ftp://x")! }, "storage.s3.endpoint")
        check({ $0.bucket = "Bad_Bucket" }, "storage.s3.bucket")
        check({ $0.bucket = "ab" }, "storage.s3.bucket")
        check({ $0.credentials.secretAccessKey = "" }, "credentials")
        check({ $0.region = "" }, "storage.s3.region")
        check({ $0.prefix = "/abs" }, "storage.s3.prefix")
    }

    @Test func partsAreSizedForMultiGigabyteFiles() {
        #expect(S3MultipartWriter.partSize(requested: 1, expectedSize: nil) == 5 << 20)
        #expect(S3MultipartWriter.partSize(requested: 16 << 20, expectedSize: 4 << 30) == 16 << 20)
        // 500 GiB in 10,000 parts needs 51.2 MiB parts: rounded up to 52 MiB.
        let size = S3MultipartWriter.partSize(requested: 16 << 20, expectedSize: 500 << 30)
        #expect(size == 52 << 20)
        #expect(Int64(size) * 10_000 >= 500 << 30)
    }

    @Test func xmlAnswersAreRead() {
        let list = """
            <?xml version="1.0" encoding="UTF-8"?><ListBucketResult><IsTruncated>true</IsTruncated>\
            <Contents><Key>ff/a&amp;b.zip</Key><Size>12</Size><ETag>&quot;abc&quot;</ETag></Contents>\
            <Contents><Key>ff/c.zip</Key><Size>3</Size></Contents><NextContinuationToken>tok/1</NextContinuationToken></ListBucketResult>
            """
        let contents = S3XML.elements("Contents", in: list)
        #expect(contents.count == 2)
        #expect(S3XML.firstValue(of: "Key", in: contents[0]) == "ff/a&b.zip")
        #expect(S3XML.firstValue(of: "ETag", in: contents[0]) == "\"abc\"")
        #expect(S3XML.firstValue(of: "NextContinuationToken", in: list) == "tok/1")
        #expect(S3XML.decode("&#65;&#x42;&bogus;") == "AB&bogus;")
        let error = S3Error.from(status: 403, body: "<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>", key: "k")
        #expect(error == .rejected(status: 403, code: "AccessDenied", message: "Request has expired"))
        #expect(S3Error.from(status: 503, body: "<Error><Code>SlowDown</Code></Error>", key: "k").errorCode == .objectStoreUnavailable)
        #expect(S3Error.from(status: 404, body: "", key: "k") == .notFound(code: "HTTP404", key: "k"))
    }
}
