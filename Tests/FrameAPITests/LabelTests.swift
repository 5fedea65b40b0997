import Foundation
import HummingbirdTesting
import Testing

/// `labels` on `POST /videos`: a job's label requirement, validated and shown in the video JSON.
@Suite struct LabelTests {
    @Test func labelsFromFieldOrQueryAreStoredAndShown() async throws {
        try await Harness.run { h, client in
            let (token, _) = try await h.user(client)
            let viaField = try await h.upload(
                client, token: token, files: [("a.mp4", [1])], fields: [("labels", "gpu=yes, region=eu")])
            #expect(viaField.status == .created)
            let a = try viaField.decode(Video.self)
            #expect(a.labels == ["gpu": "yes", "region": "eu"])
            let viaQuery = try await h.upload(
                client, token: token, files: [("b.mp4", [1])], fields: [], query: "?labels=gpu%3Dno")
            #expect(try viaQuery.decode(Video.self).labels == ["gpu": "no"])
            // Stored with the job: GET shows the same requirement.
            let fetched = try await client.execute(uri: "/videos/\(a.id.uuidString.lowercased())", method: .get, headers: h.auth(token))
            #expect(try fetched.decode(Video.self).labels == ["gpu": "yes", "region": "eu"])
            let none = try await h.upload(client, token: token, files: [("c.mp4", [1])], fields: [])
            #expect(try none.decode(Video.self).labels == [:])
        }
    }

    @Test func malformedLabelsAre422() async throws {
        try await Harness.run { h, client in
            let (token, _) = try await h.user(client)
            for value in ["gpu", "=yes", "gpu=", "gpu=yes,,", "gpu=y es", "gpu=yes,gpu=no", "g/pu=1", "a=1=2"] {
                let response = try await h.upload(client, token: token, files: [("d.mp4", [1])], fields: [("labels", value)])
                #expect(response.status == .unprocessableContent, "\(value)")
                #expect(response.problemCode == "VALIDATION_FAILED")
                #expect(try response.decode(Problem.self).detail.contains("labels"), "\(value)")
            }
            #expect(h.uploadedFiles().isEmpty)
        }
    }
}
