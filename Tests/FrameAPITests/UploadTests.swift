@testable import FrameAPI
import FrameCore
import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import NIOPosix
import Testing

@Suite("Uploads")
struct UploadTests {
    static func pattern(_ count: Int) -> [UInt8] { (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 8) } }

    /// A multi-megabyte body (arriving in 32 KiB chunks in-process, as TCP segments live) lands byte for byte.
    /// It is larger than Hummingbird's 2 MiB collect limit, so a code path that collected the body would fail.
    @Test(arguments: [TestingSetup.router, .live])
    func largeUploadStreamsToDisk(_ setup: TestingSetup) async throws {
        try await Harness.run(setup) { h, client in
            let (token, _) = try await h.user(client)
            let bytes = Self.pattern(2 * 1024 * 1024 + 300_123)
            let response = try await h.upload(client, token: token, files: [("Holiday Clip.MP4", bytes)],
                                              fields: [("fps", "1/3"), ("format", "png")])
            #expect(response.status == .created)
            let video = try response.decode(Video.self)
            #expect(video.originalFilename == "Holiday Clip.MP4")
            #expect(video.sizeBytes == Int64(bytes.count))
            #expect(video.status == "QUEUED")
            #expect(video.fps == "1/3")
            #expect(video.format == "png")
            let stored = h.uploads.appendingPathComponent(video.id.uuidString.lowercased()).appendingPathComponent("input.mp4")
            #expect(try Data(contentsOf: stored) == Data(bytes))
        }
    }

    @Test func optionsComeFromQueryOrFieldsBeforeOrAfterTheFile() async throws {
        try await Harness.run { h, client in
            let (token, _) = try await h.user(client)
            let first = try await h.upload(
                client, token: token, files: [("a.mkv", [1, 2, 3])],
                fields: [("fps", "2.5"), ("format", "jpg"), ("quality", "5"), ("maxWidth", "640"), ("maxHeight", "480")],
                fieldsFirst: true)
            let a = try first.decode(Video.self)
            #expect((a.fps, a.format, a.quality, a.maxWidth, a.maxHeight) == ("2.5", "jpg", 5, 640, 480))
            let second = try await h.upload(
                client, token: token, files: [("b.mp4", [1])], fields: [("quality", "9")], query: "?fps=0.1&quality=3")
            let b = try second.decode(Video.self)
            #expect((b.fps, b.quality) == ("0.1", 9))
        }
    }

    @Test func tooLargeIsRefusedAndThePartialFileRemoved() async throws {
        // The request limit is raised so that the per-file limit is the one crossed, mid-stream.
        try await Harness.run(maxUploadBytes: 256 * 1024, configure: { $0.maxRequestBytes = 8 << 20 }) { h, client in
            let (token, _) = try await h.user(client)
            let response = try await h.upload(client, token: token, files: [("big.mp4", Self.pattern(1024 * 1024))])
            #expect(response.status == .contentTooLarge)
            #expect(response.problemCode == "UPLOAD_TOO_LARGE")
            #expect(h.uploadedFiles().isEmpty)
            // Exactly the limit is fine.
            let fits = try await h.upload(client, token: token, files: [("fits.mp4", Self.pattern(256 * 1024))])
            #expect(fits.status == .created)
        }
    }

    /// Over a real socket the 413 arrives while the client is still sending, and nothing stays on disk.
    @Test func tooLargeOverTheNetwork() async throws {
        try await Harness.run(.live, maxUploadBytes: 256 * 1024, configure: { $0.maxRequestBytes = 8 << 20 }) { h, client in
            let (token, _) = try await h.user(client)
            let response = try await h.upload(client, token: token, files: [("big.mp4", Self.pattern(3_000_000))])
            #expect(response.status == .contentTooLarge)
            #expect(response.problemCode == "UPLOAD_TOO_LARGE")
            #expect(h.uploadedFiles().isEmpty)
        }
    }

    @Test func disallowedExtensionIsRefusedBeforeWriting() async throws {
        try await Harness.run { h, client in
            let (token, _) = try await h.user(client)
            for (name, says) in [("notes.txt", "'.txt' files are not accepted"), ("noextension", "'noextension' has no file extension"),
                                 ("clip.mp4.exe", "'.exe' files are not accepted")] {
                let response = try await h.upload(client, token: token, files: [(name, [1, 2, 3])])
                #expect(response.status == .unsupportedMediaType, "\(name)")
                #expect(response.problemCode == "UNSUPPORTED_EXTENSION")
                // The detail names what is wrong (a name without an extension was "'.' files" once).
                #expect(String(buffer: response.body).contains(says), "\(String(buffer: response.body))")
            }
            #expect(h.uploadedFiles().isEmpty)
            // Case-insensitive both ways: the allowed list has "MOV", the file says ".mov".
            let mov = try await h.upload(client, token: token, files: [("x.mov", [1])])
            #expect(mov.status == .created)
        }
    }

    @Test func notAVideoIsUnprocessable() async throws {
        try await Harness.run(ingest: .notMedia) { h, client in
            let (token, _) = try await h.user(client)
            let response = try await h.upload(client, token: token, files: [("text.mp4", Array("hello".utf8))])
            #expect(response.status == .unprocessableContent)
            #expect(response.problemCode == "NOT_MEDIA")
            #expect(h.uploadedFiles().isEmpty)
        }
    }

    @Test func severalFilesGiveItems() async throws {
        try await Harness.run(ingest: .picky) { h, client in
            let (token, _) = try await h.user(client)
            let response = try await h.upload(
                client, token: token, files: [("one.mp4", [1]), ("two.mkv", [2, 2])], fields: [("fps", "2")])
            #expect(response.status == .created)
            let batch = try response.decode(Batch.self)
            #expect(batch.items.map(\.originalFilename) == ["one.mp4", "two.mkv"])
            #expect(batch.items.allSatisfy { $0.fps == "2" })
            #expect(batch.errors == nil)
            // One refused, one accepted: 201 with the refusal listed.
            let mixed = try await h.upload(client, token: token, files: [("good.mp4", [1]), ("bad.mp4", [2])])
            #expect(mixed.status == .created)
            let partial = try mixed.decode(Batch.self)
            #expect(partial.items.map(\.originalFilename) == ["good.mp4"])
            #expect(partial.errors?.map(\.code) == ["CORRUPT_MEDIA"])
        }
    }

    @Test func missingFilePartAndBadOptionsAreValidationErrors() async throws {
        try await Harness.run { h, client in
            let (token, _) = try await h.user(client)
            let noFile = try await h.upload(client, token: token, files: [], fields: [("fps", "1")])
            #expect(noFile.status == .unprocessableContent)
            #expect(noFile.problemCode == "VALIDATION_FAILED")
            let notMultipart = try await client.execute(
                uri: "/videos", method: .post, headers: h.auth(token, [.contentType: "application/octet-stream"]),
                body: ByteBuffer(bytes: [1, 2, 3]))
            #expect(notMultipart.problemCode == "VALIDATION_FAILED")
            for (field, value) in [("fps", "abc"), ("fps", "0"), ("fps", "-1"), ("format", "gif"), ("quality", "40"),
                                   ("quality", "x"), ("maxWidth", "-5"), ("maxHeight", "99999")] {
                for viaQuery in [false, true] {
                    let response = try await h.upload(
                        client, token: token, files: [("c.mp4", [1])], fields: viaQuery ? [] : [(field, value)],
                        query: viaQuery ? "?\(field)=\(value)" : "")
                    #expect(response.status == .unprocessableContent, "\(field)=\(value)")
                    #expect(response.problemCode == "VALIDATION_FAILED")
                    #expect(try response.decode(Problem.self).detail.contains(field))
                }
            }
            #expect(h.uploadedFiles().isEmpty)
        }
    }

    /// A body cut off inside the file part (no closing boundary) is refused and leaves nothing behind.
    @Test func truncatedBodyLeavesNothing() async throws {
        try await Harness.run { h, client in
            let (token, _) = try await h.user(client)
            let multipart = Multipart(files: [("cut.mp4", Self.pattern(100_000))], fields: [], fieldsFirst: false)
            var body = multipart.body
            body = body.getSlice(at: body.readerIndex, length: body.readableBytes - 200)!
            let response = try await client.execute(
                uri: "/videos", method: .post,
                headers: h.auth(token, [.contentType: "multipart/form-data; boundary=\(multipart.boundary)"]), body: body)
            #expect(response.status == .unprocessableContent)
            #expect(response.problemCode == "VALIDATION_FAILED")
            #expect(h.uploadedFiles().isEmpty)
        }
    }

    /// A full disk surfaces as 507 STORAGE_FULL (writing to /dev/full fails with ENOSPC): from the
    /// write after a staging buffer's worth, or at the latest when the file is closed.
    @Test func fullDiskIsStorageFull() async throws {
        func isStorageFull(_ error: any Error) -> Bool {
            (error as? APIError)?.code == .storageFull && (error as? APIError)?.status.code == 507
        }
        let small = try await UploadFile.create(path: "/dev/full", threadPool: .singleton)
        try await small.write(ByteBuffer(bytes: [1, 2, 3]))
        await #expect { try await small.syncAndClose() } throws: { isStorageFull($0) }

        let large = try await UploadFile.create(path: "/dev/full", threadPool: .singleton)
        let chunk = ByteBuffer(bytes: Self.pattern(64 * 1024))
        await #expect {
            for _ in 0..<(3 * UploadFile.stagingBytes / chunk.readableBytes) { try await large.write(chunk) }
        } throws: { isStorageFull($0) }
        await large.abandon()
    }

    /// Uploads are staged in two buffers, one written while the other fills; every length around
    /// the buffer boundaries lands byte for byte.
    @Test(arguments: [0, 1, 4097, UploadFile.stagingBytes - 1, UploadFile.stagingBytes, UploadFile.stagingBytes + 1,
                      3 * UploadFile.stagingBytes + 12_345])
    func stagedWritesLandByteForByte(_ length: Int) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ff-upload-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("input.mp4").path
        let file = try await UploadFile.create(path: path, threadPool: .singleton)
        let bytes = Self.pattern(length)
        var offset = 0
        var step = 1
        while offset < bytes.count {  // uneven chunks, as the parser hands them on
            let end = min(bytes.count, offset + step)
            try await file.write(ByteBuffer(bytes: bytes[offset..<end]))
            offset = end
            step = step * 3 + 7
        }
        try await file.syncAndClose()
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data(bytes))
    }

    @Test func contentDispositionParsing() {
        let d = ContentDisposition(#"form-data; name="file"; filename="a \"quoted\"; name.mp4""#)
        #expect(d.name == "file")
        #expect(d.filename == #"a "quoted"; name.mp4"#)
        #expect(UploadReceiver.basename(#"C:\Users\me\clip.mp4"#) == "clip.mp4")
        #expect(UploadReceiver.boundary(#"multipart/form-data; boundary="abc def""#) == "abc def")
        #expect(UploadReceiver.boundary("application/json") == nil)
    }
}
