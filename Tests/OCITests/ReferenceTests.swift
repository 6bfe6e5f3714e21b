import Testing
@testable import OCI

@Suite struct ReferenceTests {
    @Test(arguments: [
        ("oci:dir", ImageReference.ociLayout(path: "dir", ref: nil)),
        ("oci:dir:1.16.0", .ociLayout(path: "dir", ref: "1.16.0")),
        ("oci-archive:a.tar:v2.1-canary", .ociArchive(path: "a.tar", ref: "v2.1-canary")),
        ("oci-archive:/tmp/x/a.tar", .ociArchive(path: "/tmp/x/a.tar", ref: nil)),
        ("docker-archive:s.tar", .dockerArchive(path: "s.tar", ref: nil)),
        (
            "docker-archive:s.tar:mintplexlabs/anything-llm:1.16.0",
            .dockerArchive(path: "s.tar:mintplexlabs/anything-llm", ref: "1.16.0")
        ),
        ("base.tar", .path("base.tar", ref: nil)),
        ("./base.tar:1.0", .path("./base.tar", ref: "1.0")),
    ])
    func parses(_ text: String, _ expected: ImageReference) throws {
        #expect(try ImageReference.parse(text) == expected)
    }

    @Test func prefersAnExistingPath() throws {
        let r = try ImageReference.parse(
            "docker-archive:s.tar:mintplexlabs/anything-llm:1.16.0", exists: { $0 == "s.tar" })
        #expect(r == .dockerArchive(path: "s.tar", ref: "mintplexlabs/anything-llm:1.16.0"))
        #expect(try ImageReference.parse("oci:a:b", exists: { $0 == "a:b" }) == .ociLayout(path: "a:b", ref: nil))
    }

    @Test(arguments: ["", "oci:", "docker-daemon:x", "docker://UPPER/x", "ftp:x", "oci-archive:a.tar:bad ref"])
    func rejects(_ text: String) {
        #expect(throws: OCIError.self) { try ImageReference.parse(text) }
    }

    @Test func platforms() throws {
        let p = try #require(Platform.parse("linux/arm64/v8"))
        #expect(p.description == "linux/arm64/v8")
        #expect(p.matches(Platform(os: "linux", architecture: "arm64")))
        #expect(
            Platform(os: "linux", architecture: "arm64").matches(
                Platform(os: "linux", architecture: "arm64", variant: "v8")))
        #expect(!p.matches(Platform(os: "linux", architecture: "amd64")))
        #expect(Platform.parse("linux") == nil)
        #expect(Platform.parse("linux//v8") == nil)
    }

    @Test func digests() {
        #expect(Digest.isValid("sha256:" + String(repeating: "a", count: 64)))
        #expect(!Digest.isValid("sha256:" + String(repeating: "A", count: 64)))
        #expect(!Digest.isValid("sha512:" + String(repeating: "a", count: 64)))
        #expect(!Digest.isValid("sha256:abc"))
    }
}
