import Foundation
import Testing
import TestSupport
import Hashing
import Layers
import OCI
@testable import StampCore

/// Builds on the generated anything-llm-shaped sample (two platforms and attestations behind a
/// nested index) and asks independent tools what they see.
@Suite struct BuildTests {
    let dir: String
    let base: String
    let out: String
    let result: BuildResult

    init() throws {
        dir = try tempDir()
        base = dir + "/base.tar"
        out = dir + "/out.tar"
        try SampleImage.write(to: base, format: .ociArchive)
        var s = settings("oci-archive:\(base):1.16.0", "oci-archive:\(out)")
        s.labels = ["team=ai"]
        s.annotations = ["org.example.ticket=REL-42"]
        s.env = ["FEATURE_X=1", "NODE_ENV=staging"]
        s.tags = ["v2.1-canary"]
        result = try build(s)
    }

    @Test func skopeoSeesBothPlatformsAndNoAttestations() throws {
        let raw = try run(["skopeo", "inspect", "--raw", "oci-archive:\(out)"])
        #expect(raw.status == 0, "\(raw.err)")
        let index = try jsonOf(raw.out)
        #expect(index["mediaType"]?.stringValue == MediaType.ociIndex)
        let platforms = index["manifests"]!.arrayValue!.map { Descriptor(json: $0).platform!.description }
        #expect(platforms == ["linux/amd64", "linux/arm64/v8"])
        #expect(index["annotations"]?["org.example.ticket"]?.stringValue == "REL-42")
        #expect(index["annotations"]?[AnnotationKey.version]?.stringValue == "v2.1-canary")
        #expect(Digester.digest(Array(raw.out.utf8)) == result.digest)
    }

    @Test(arguments: [("amd64", nil as String?), ("arm64", "v8")])
    func skopeoReadsEachPlatformsConfig(_ arch: String, _ variant: String?) throws {
        var args = ["skopeo", "--override-os", "linux", "--override-arch", arch]
        if let variant { args += ["--override-variant", variant] }
        let r = try run(args + ["inspect", "--raw", "--config", "oci-archive:\(out)"])
        #expect(r.status == 0, "\(r.err)")
        let config = try jsonOf(r.out)
        #expect(config["architecture"]?.stringValue == arch)
        let labels = config["config"]!["Labels"]!.stringMap
        #expect(labels[AnnotationKey.version] == "v2.1-canary")
        #expect(labels[AnnotationKey.revision] == "0123456789abcdef0123456789abcdef01234567")
        #expect(labels[AnnotationKey.created] == "2025-04-05T00:00:00Z")
        // The sample names itself only "1.16.0": no repository, so no base name (never a guess).
        #expect(labels[AnnotationKey.baseName] == nil)
        #expect(labels[AnnotationKey.baseDigest] == result.baseDigest)
        #expect(labels["team"] == "ai")
        let env = config["config"]!["Env"]!.arrayValue!.compactMap(\.stringValue)
        #expect(
            env.contains("FEATURE_X=1") && env.contains("NODE_ENV=staging") && env.contains("IMAGE_VERSION=v2.1-canary")
        )
        #expect(!env.contains("NODE_ENV=production"))
    }

    /// Every key stamp does not own is byte-for-byte the base's.
    @Test func configPatchIsLossless() throws {
        let baseImage = try ImageReader.open(.ociArchive(path: base, ref: "1.16.0"))
        let stamped = try ImageReader.open(.ociArchive(path: out, ref: nil))
        for (b, s) in zip(baseImage.images, stamped.images) {
            let owned: Set<String> = ["config", "container_config", "created", "history", "rootfs"]
            for (k, v) in b.config.objectValue! where !owned.contains(k) {
                #expect(s.config[k] == v, "top-level key \(k) changed")
            }
            // Docker's legacy copy, where the base has one, holds the same stamp keys as config.
            for key in ["config", "container_config"] where b.config[key]?.objectValue != nil {
                for (k, v) in b.config[key]!.objectValue! where !["Labels", "Env", "Healthcheck"].contains(k) {
                    #expect(s.config[key]![k] == v, "\(key).\(k) changed")
                }
                // What the stamp set in config (labels and env entries new or changed, the
                // Healthcheck) is the same in the legacy copy; the rest of each stays its own.
                let newLabels = s.config["config"]!["Labels"]!.stringMap.filter {
                    b.config["config"]!["Labels"]?.stringMap[$0.key] != $0.value
                }
                let labels = s.config[key]!["Labels"]?.stringMap ?? [:]
                #expect(newLabels.allSatisfy { labels[$0.key] == $0.value }, "\(key).Labels disagree")
                let baseEnv = Set((b.config["config"]!["Env"]?.arrayValue ?? []).compactMap(\.stringValue))
                let env = Set((s.config[key]!["Env"]?.arrayValue ?? []).compactMap(\.stringValue))
                let newEnv = (s.config["config"]!["Env"]?.arrayValue ?? []).compactMap(\.stringValue).filter {
                    !baseEnv.contains($0)
                }
                #expect(newEnv.allSatisfy { env.contains($0) }, "\(key).Env disagrees")
                #expect(s.config[key]!["Healthcheck"] == s.config["config"]!["Healthcheck"])
            }
            #expect(JSONValue.encodeString(s.config["x-vendor.example"]!) == #"{"keep":[1,2.50,1e3,-0]}"#)
            #expect(s.config["config"]!["OnBuild"] == .null)
            #expect(
                s.config["config"]!["Healthcheck"]?["Test"]
                    == .array([.string("CMD"), .string("/app/health-check-enhanced.sh")]))
            #expect(s.config["container_config"] != nil)
            let bh = b.config["history"]!.arrayValue!, sh = s.config["history"]!.arrayValue!
            #expect(Array(sh.prefix(bh.count)) == bh)
            #expect(sh.count == bh.count + 1)
            #expect(sh.last?["created_by"]?.stringValue?.contains("/app/version.txt") == true)
            #expect(Array(s.diffIDs.prefix(b.diffIDs.count)) == b.diffIDs)
            #expect(s.diffIDs.count == b.diffIDs.count + 1)
            #expect(Array(s.layers.prefix(b.layers.count)).map(\.digest) == b.layers.map(\.digest))
            #expect(s.layers.count == b.layers.count + 1)
            #expect(s.config["created"]?.stringValue == "2025-04-05T00:00:00Z")
        }
    }

    /// skopeo checks every digest on copy; umoci unpack checks diff_ids and applies whiteouts.
    @Test func skopeoCopiesAndUmociUnpacks() throws {
        let layout = dir + "/copied"
        let c = try run(["skopeo", "copy", "oci-archive:\(out)", "oci:\(layout):x"])
        #expect(c.status == 0, "\(c.err)")
        let bundle = dir + "/bundle"
        let u = try run(["umoci", "unpack", "--rootless", "--image", "\(layout):x", bundle])
        #expect(u.status == 0, "\(u.err)")
        let rootfs = bundle + "/rootfs"
        #expect(try String(contentsOfFile: rootfs + "/app/version.txt", encoding: .utf8) == "v2.1-canary\n")
        let vj = try readJSON(rootfs + "/app/version.json")
        #expect(vj["version"]?.stringValue == "v2.1-canary")
        #expect(vj["base"]?["digest"]?.stringValue == result.baseDigest)
        // The base's whiteout and opaque directory still apply.
        #expect(!FileManager.default.fileExists(atPath: rootfs + "/app/old-notes.txt"))
        #expect(!FileManager.default.fileExists(atPath: rootfs + "/app/cache/stale.txt"))
        #expect(FileManager.default.fileExists(atPath: rootfs + "/app/cache/fresh.txt"))
        #expect(FileManager.default.fileExists(atPath: rootfs + "/app/server/public/index.js"))
    }

    @Test func skopeoReadsTheSameFileAsADockerArchive() throws {
        let r = try run(["skopeo", "inspect", "docker-archive:\(out)"])
        #expect(r.status == 0, "\(r.err)")
        let j = try jsonOf(r.out)
        #expect(j["Labels"]?[AnnotationKey.version]?.stringValue == "v2.1-canary")
        #expect(j["Architecture"]?.stringValue == "amd64")
        let manifest = try jsonOf(try run(["bsdtar", "-xOf", out, "manifest.json"]).out)
        #expect(
            manifest.arrayValue?.first?["RepoTags"]
                == .array([.string("docker.io/mintplexlabs/anything-llm:v2.1-canary")]))
    }

    /// The stamp layer's bytes depend on libdeflate's version (Debian 12 has 1.14, Ubuntu 22.04
    /// 1.10, 24.04 1.19): stamp links it statically, so the runner's copy is never loaded. A
    /// libdeflate.so.0 that aborts on any call, first on the loader's path, changes nothing: the
    /// same digest as without it (issue 28).
    @Test func theRunnersLibdeflateIsNeverLoaded() throws {
        let dir = try tempDir()
        let needed = try run(["readelf", "-d", stampBin])
        try #require(needed.status == 0, "\(needed.err)")
        #expect(!needed.out.contains("libdeflate"), "\(needed.out)")
        try Data(
            """
            #include <stdio.h>
            #include <stdlib.h>
            static void refuse(void) { fputs("the runner's libdeflate was called\\n", stderr); abort(); }
            void *libdeflate_alloc_compressor(int level) { refuse(); return 0; }
            void libdeflate_free_compressor(void *c) { refuse(); }
            size_t libdeflate_gzip_compress(void *c, const void *in, size_t n, void *out, size_t m) { refuse(); return 0; }
            size_t libdeflate_gzip_compress_bound(void *c, size_t n) { refuse(); return 0; }
            """.utf8
        ).write(to: URL(fileURLWithPath: dir + "/other.c"))
        let cc = try run(["clang", "-shared", "-fPIC", "-o", dir + "/libdeflate.so.0", dir + "/other.c"])
        try #require(cc.status == 0, "\(cc.err)")
        try SampleImage.write(to: dir + "/base.tar", format: .ociArchive)
        func digest(_ env: [String: String], _ out: String) throws -> String {
            let r = try run(
                [stampBin, "build", "--base", dir + "/base.tar", "--version", "v1", "--output", out, "--json"],
                env: env.merging(["SOURCE_DATE_EPOCH": "1700000000"]) { $1 })
            #expect(r.status == 0, "\(r.err)")
            return try JSONValue.parse(r.out)["digest"]?.stringValue ?? "none"
        }
        let own = try digest([:], dir + "/a.tar")
        let other = try digest(["LD_LIBRARY_PATH": dir], dir + "/b.tar")
        #expect(own == other && own.hasPrefix("sha256:"))
        #expect(
            try Digester.digest(Data(contentsOf: URL(fileURLWithPath: dir + "/a.tar")))
                == Digester.digest(Data(contentsOf: URL(fileURLWithPath: dir + "/b.tar"))))
    }

    @Test func archiveIsSortedWithFixedHeaders() throws {
        let r = try run(["bsdtar", "-tvf", out])
        #expect(r.status == 0)
        let names = r.out.split(separator: "\n").map {
            String($0.split(separator: " ", omittingEmptySubsequences: true).last!)
        }
        #expect(names.first == "blobs/")
        #expect(Array(names.suffix(3)) == ["index.json", "manifest.json", "oci-layout"])
        // Blobs in a fixed order: the base's layers (copied while the stamp layer was built)
        // sorted by digest, then the new blobs and the base's other blobs sorted by digest.
        let blobs = names.filter { $0.hasPrefix("blobs/sha256/") && $0.count > 14 }
        let source = try ImageReader.open(.ociArchive(path: base, ref: nil))
        let baseLayers = Set(source.images.flatMap { $0.layers.map { "blobs/sha256/" + Digest.hex($0.digest) } })
        #expect(!baseLayers.isEmpty)
        let (first, rest) = (blobs.filter { baseLayers.contains($0) }, blobs.filter { !baseLayers.contains($0) })
        #expect(blobs == first.sorted() + rest.sorted())
        #expect(Set(first) == baseLayers)
        #expect(r.out.split(separator: "\n").allSatisfy { $0.contains(" 0      0 ") && $0.contains("Apr  5  2025") })
        let layout = try jsonOf(try run(["bsdtar", "-xOf", out, "oci-layout"]).out)
        #expect(layout["imageLayoutVersion"]?.stringValue == "1.0.0")
    }

    @Test func verifyAndInspectAgree() throws {
        let v = try stamp(["verify", out])
        #expect(v.status == 0, "\(v.out)\(v.err)")
        let i = try stamp(["inspect", "--json", out])
        #expect(i.status == 0)
        let j = try jsonOf(i.out)
        #expect(j["stamp"]?["version"]?.stringValue == "v2.1-canary")
        #expect(j["digest"]?.stringValue == result.digest)
        #expect(j["platforms"]?.arrayValue?.count == 2)
        let human = try stamp(["inspect", out])
        #expect(human.out.contains("Stamp     version v2.1-canary"))
        #expect(human.out.contains("Platform  linux/arm64/v8"))
    }

    @Test func sameInputsSameBytes() throws {
        var s = settings("oci-archive:\(base):1.16.0", "oci-archive:\(dir)/again.tar")
        s.labels = ["team=ai"]
        s.annotations = ["org.example.ticket=REL-42"]
        s.env = ["FEATURE_X=1", "NODE_ENV=staging"]
        s.tags = ["v2.1-canary"]
        _ = try build(s)
        #expect(try bytes(out) == bytes(dir + "/again.tar"))
        // And through the CLI with SOURCE_DATE_EPOCH instead of --created.
        for name in ["c1.tar", "c2.tar"] {
            let r = try stamp(
                ["build", "--base", base, "--version", "v9", "--revision", "r", "--output", "\(dir)/\(name)", "-q"],
                env: ["SOURCE_DATE_EPOCH": "1743811200"])
            #expect(r.status == 0, "\(r.err)")
        }
        #expect(try bytes(dir + "/c1.tar") == bytes(dir + "/c2.tar"))
        let later = try stamp(
            ["build", "--base", base, "--version", "v9", "--revision", "r", "--output", "\(dir)/c3.tar", "-q"],
            env: ["SOURCE_DATE_EPOCH": "1743811201"])
        #expect(later.status == 0)
        #expect(try bytes(dir + "/c1.tar") != bytes(dir + "/c3.tar"))
    }

    @Test func noticeForDroppedAttestations() throws {
        let r = try stamp(["build", "--base", base, "--version", "v1", "--output", "\(dir)/n.tar", "--created", "0"])
        #expect(r.status == 0)
        #expect(r.err.contains("dropped 2 attestation manifest(s)"))
    }
}

/// The handoff to the next CI step: `--metadata-file` (buildx's keys), `--digestfile`
/// (skopeo's) and `$GITHUB_OUTPUT`, each naming the digest skopeo finds in the output.
@Suite struct CIHandoffTests {
    @Test func metadataDigestfileAndGitHubOutputNameTheImage() throws {
        let dir = try tempDir()
        let base = try sampleBase(dir)
        try "earlier=1\n".write(toFile: dir + "/gh-output", atomically: false, encoding: .utf8)
        let r = try stamp(
            [
                "build", "--base", base, "--version", "v9", "--tag", "ai/app:v9", "--output", dir + "/o.tar",
                "--metadata-file", dir + "/meta.json", "--digestfile", dir + "/digest",
            ],
            env: ["GITHUB_OUTPUT": dir + "/gh-output"])
        #expect(r.status == 0, "\(r.err)")
        let raw = try run(["skopeo", "inspect", "--raw", "oci-archive:" + dir + "/o.tar"]).out
        let digest = "sha256:" + Hashing.Digester.digest(Array(raw.utf8)).dropFirst(7)
        let meta = try readJSON(dir + "/meta.json")
        #expect(meta["containerimage.digest"]?.stringValue == digest)
        #expect(meta["containerimage.descriptor"]?["digest"]?.stringValue == digest)
        #expect(meta["containerimage.descriptor"]?["size"]?.int64Value == Int64(raw.utf8.count))
        #expect(meta["image.name"]?.stringValue == "ai/app:v9")
        #expect(meta["stamp.version"]?.stringValue == "v9")
        #expect(meta["stamp.platforms"]?["linux/arm64/v8"]?.stringValue?.hasPrefix("sha256:") == true, "\(meta)")
        #expect(try String(contentsOfFile: dir + "/digest", encoding: .utf8) == digest)
        let gh = try String(contentsOfFile: dir + "/gh-output", encoding: .utf8).split(separator: "\n").map(String.init)
        #expect(
            gh.first == "earlier=1" && gh.contains("digest=\(digest)") && gh.contains("version=v9")
                && gh.contains("image=ai/app:v9"), "\(gh)")
    }
}

/// `--tag/-t` repeated (and a list in stamp.yaml): every name reaches the output.
@Suite struct TagTests {
    @Test func everyTagIsWrittenAndReadBack() throws {
        let dir = try tempDir()
        let base = try sampleBase(dir)
        let r = try stamp([
            "build", "--base", base, "--version", "v7", "--output", dir + "/o.tar", "--platform", "linux/amd64",
            "--tag", "v7", "-t", "latest", "--tag", "ai/app:canary",
        ])
        #expect(r.status == 0, "\(r.err)")
        // skopeo finds the image under each ref.name; docker load sees every RepoTag.
        let digest = try skopeoDigest("oci-archive:\(dir)/o.tar:v7")
        #expect(digest != nil)
        for t in ["latest", "ai/app:canary"] {
            #expect(try skopeoDigest("oci-archive:\(dir)/o.tar:\(t)") == digest, "\(t)")
        }
        let tags = try run(["sh", "-c", "bsdtar -xOf '\(dir)/o.tar' manifest.json | jq -c '.[0].RepoTags'"]).out
        #expect(
            tags.trimmingCharacters(in: .whitespacesAndNewlines)
                == #"["docker.io/mintplexlabs/anything-llm:v7","docker.io/mintplexlabs/anything-llm:latest","ai/app:canary"]"#,
            "\(tags)")

        // A layout keeps one entry per tag, and a later build moves only the tags it names.
        try "base: \(base)\nversion: v8\nplatform: [linux/amd64]\ntag: [v8, latest]\n".write(
            toFile: dir + "/stamp.yaml", atomically: true, encoding: .utf8)
        #expect(
            try stamp([
                "build", "--base", base, "--version", "v7", "--platform", "linux/amd64", "--output",
                "oci:\(dir)/layout", "-t", "v7", "-t", "latest",
            ]).status == 0)
        #expect(try stamp(["build", "--config", dir + "/stamp.yaml", "--output", "oci:\(dir)/layout"]).status == 0)
        let names = (try readJSON(dir + "/layout/index.json"))["manifests"]!.arrayValue!.map { Descriptor(json: $0) }
        let byName = Dictionary(
            names.compactMap { d in d.annotations[AnnotationKey.refName].map { ($0, d.digest) } },
            uniquingKeysWith: { a, _ in a })
        #expect(Set(byName.keys) == ["v7", "v8", "latest"])
        #expect(byName["latest"] == byName["v8"] && byName["v7"] != byName["v8"])
    }

    @Test func everyTagIsPushed() throws {
        let reg = try TestRegistry()
        let dir = try tempDir()
        let base = try sampleBase(dir)
        let r = try stamp([
            "build", "--base", base, "--version", "v7", "--output", "docker://\(reg.host)/ai/app:v7", "-t", "latest",
            "-t", "stable",
            "--tls-verify=false", "--json",
        ])
        #expect(r.status == 0, "\(r.err)")
        let digest = try jsonOf(r.out)["digest"]?.stringValue
        for t in ["v7", "latest", "stable"] {
            #expect(try skopeoDigest("docker://\(reg.host)/ai/app:\(t)", ["--tls-verify=false"]) == digest, "\(t)")
        }
        let bad = try stamp([
            "build", "--base", base, "--version", "v7", "--output", "docker://\(reg.host)/ai/app:v7", "-t",
            "other/repo:x",
            "--tls-verify=false",
        ])
        #expect(bad.status != 0 && bad.err.contains("a tag is a bare TAG"), "\(bad.err)")
    }
}
