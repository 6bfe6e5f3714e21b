import Testing
@testable import OCI

struct RegistryReferenceTests {
    @Test(
        arguments: [
            ("docker://mintplexlabs/anything-llm:1.16.0", "docker.io", "mintplexlabs/anything-llm", "1.16.0", nil),
            ("docker://ubuntu", "docker.io", "library/ubuntu", nil, nil),
            ("docker://docker.io/library/node:20-alpine", "docker.io", "library/node", "20-alpine", nil),
            ("docker://index.docker.io/nginx:1", "docker.io", "library/nginx", "1", nil),
            (
                "docker://registry.corp.local/ai/anything-llm:v2.1-canary", "registry.corp.local", "ai/anything-llm",
                "v2.1-canary", nil
            ),
            ("docker://localhost:5000/a/b", "localhost:5000", "a/b", nil, nil),
            ("docker://localhost/app", "localhost", "app", nil, nil),
            (
                "docker://127.0.0.1:5000/x@sha256:" + String(repeating: "a", count: 64), "127.0.0.1:5000", "x", nil,
                "sha256:" + String(repeating: "a", count: 64)
            ),
            (
                "docker://ghcr.io/o/r:t@sha256:" + String(repeating: "b", count: 64), "ghcr.io", "o/r", "t",
                "sha256:" + String(repeating: "b", count: 64)
            ),
        ] as [(String, String, String, String?, String?)])
    func normalises(_ text: String, _ host: String, _ repo: String, _ tag: String?, _ digest: String?) throws {
        let r = try RegistryReference.parse(text)
        #expect(r.host == host)
        #expect(r.repository == repo)
        #expect(r.tag == tag)
        #expect(r.digest == digest)
        // Printing and parsing again gives the same reference.
        #expect(try RegistryReference.parse(r.description) == r)
    }

    @Test func dockerHubAPIHostAndDefaultTag() throws {
        let r = try RegistryReference.parse("docker://alpine")
        #expect(r.apiHost == "registry-1.docker.io")
        #expect(r.reference == "latest")
        #expect(
            try ImageReference.parse("docker://alpine:3")
                == .registry(RegistryReference(host: "docker.io", repository: "library/alpine", tag: "3")))
    }

    @Test(arguments: [
        "docker://", "docker://Upper/case", "docker://a//b", "docker://a/b:bad tag", "docker://a/b@sha256:xyz",
        "docker://-a/b", "docker://a/b_", "docker://a/b:" + String(repeating: "t", count: 129),
    ])
    func rejects(_ text: String) {
        #expect(throws: OCIError.self) { try RegistryReference.parse(text) }
    }
}
