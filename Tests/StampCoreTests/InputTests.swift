import Foundation
import Testing
import TestSupport
import Hashing
import Layers
import OCI
@testable import StampCore

/// Every input shape the core accepts, each stamped and then checked by skopeo and `stamp verify`.
@Suite struct InputTests {
    @Test(arguments: SampleImage.Format.allCases)
    func stampsEveryFormat(_ format: SampleImage.Format) throws {
        let dir = try tempDir()
        let base = dir + "/base-" + format.rawValue
        try SampleImage.write(to: base, format: format)
        let transport = format == .dockerArchiveOCI ? "docker-archive" : format.rawValue
        let out = dir + "/out.tar"
        let r = try build(settings("\(transport):\(base)", "oci-archive:\(out)"))
        let v = Verifier.verify(.ociArchive(path: out, ref: nil))
        #expect(v.findings.isEmpty, "\(v.findings)")
        let s = try run(["skopeo", "inspect", "oci-archive:\(out)"])
        #expect(s.status == 0, "\(s.err)")
        #expect(try jsonOf(s.out)["Labels"]?[AnnotationKey.version]?.stringValue == "v2.1-canary")
        if format == .dockerArchive || format == .dockerArchiveOCI {
            #expect(r.platforms.count == 1)
            #expect(r.baseName == "mintplexlabs/anything-llm:1.16.0")  // from RepoTags
        } else {
            #expect(r.platforms.count == 2)
        }
        // The same base through a plain path, kind detected.
        let p = try build(settings(base, "oci-archive:\(dir)/plain.tar"))
        #expect(p.platforms.count == r.platforms.count)
    }

    @Test func legacyDockerSaveLayersKeepTheirDigests() throws {
        let dir = try tempDir()
        let base = dir + "/save.tar"
        try SampleImage.write(to: base, format: .dockerArchive)
        let loaded = try ImageReader.open(.dockerArchive(path: base, ref: nil))
        let img = try #require(loaded.images.first)
        // An uncompressed layer's digest is its diff_id.
        #expect(img.layers.map(\.digest) == img.diffIDs)
        #expect(img.layers.allSatisfy { $0.mediaType == MediaType.dockerLayer })
        #expect(loaded.top.mediaType == MediaType.dockerManifest)
        #expect(loaded.sourceName == "mintplexlabs/anything-llm:1.16.0")
        #expect(throws: StampError.self) { try ImageReader.open(.dockerArchive(path: base, ref: "nope:1")) }
        #expect(
            try ImageReader.open(.dockerArchive(path: base, ref: "mintplexlabs/anything-llm:1.16.0")).images.count == 1)
    }

    @Test(arguments: [Compression.zstd, .none])
    func layersOfEveryCompression(_ c: Compression) throws {
        let dir = try tempDir()
        var o = SampleImage.Options()
        o.compression = [c, .gzip, c]
        try SampleImage.write(to: dir + "/b.tar", format: .ociArchive, options: o)
        var s = settings(dir + "/b.tar", "oci-archive:\(dir)/o.tar")
        s.compression = c.rawValue
        let r = try build(s)
        #expect(r.layer != nil)
        let loaded = try ImageReader.open(.ociArchive(path: dir + "/o.tar", ref: nil))
        #expect(
            loaded.images[0].layers.map(\.mediaType) == [
                MediaType.ociLayerType(c), MediaType.ociLayerGzip, MediaType.ociLayerType(c), MediaType.ociLayerType(c),
            ])
        let v = Verifier.verify(.ociArchive(path: dir + "/o.tar", ref: nil))
        #expect(v.findings.isEmpty, "\(v.findings)")
        #expect(try run(["skopeo", "inspect", "oci-archive:\(dir)/o.tar"]).status == 0)
    }

    @Test func flatIndexJSONIsTheIndex() throws {
        let dir = try tempDir()
        var o = SampleImage.Options()
        o.nested = false
        try SampleImage.write(to: dir + "/b", format: .oci, options: o)
        let loaded = try ImageReader.open(.ociLayout(path: dir + "/b", ref: nil))
        #expect(loaded.images.count == 2)
        #expect(loaded.attestations.count == 2)
    }

    @Test func platformNarrowsToOneManifest() throws {
        let dir = try tempDir()
        try SampleImage.write(to: dir + "/b.tar", format: .ociArchive)
        var s = settings(dir + "/b.tar", "oci-archive:\(dir)/o.tar")
        s.platforms = ["linux/arm64"]
        let r = try build(s)
        #expect(r.platforms.map(\.platform) == ["linux/arm64/v8"])
        #expect(r.mediaType == MediaType.ociManifest)
        let raw = try jsonOf(try run(["skopeo", "inspect", "--raw", "oci-archive:\(dir)/o.tar"]).out)
        #expect(raw["mediaType"]?.stringValue == MediaType.ociManifest)
        s.platforms = ["linux/s390x"]
        s.output = "oci-archive:\(dir)/none.tar"
        #expect { try build(s) } throws: { "\($0)".contains("the base has no linux/s390x") }
        #expect(!FileManager.default.fileExists(atPath: dir + "/none.tar"))
    }

    @Test func ociLayoutOutputKeepsOtherImages() throws {
        let dir = try tempDir()
        try SampleImage.write(to: dir + "/b.tar", format: .ociArchive)
        _ = try build(settings(dir + "/b.tar", "oci:\(dir)/layout:v1", version: "v1"))
        _ = try build(settings(dir + "/b.tar", "oci:\(dir)/layout:v2", version: "v2"))
        _ = try build(settings(dir + "/b.tar", "oci:\(dir)/layout:v2", version: "v2b"))
        let index = try readJSON(dir + "/layout/index.json")
        let names = index["manifests"]!.arrayValue!.compactMap {
            Descriptor(json: $0).annotations[AnnotationKey.refName]
        }
        #expect(names == ["v1", "v2"])
        for (tag, version) in [("v1", "v1"), ("v2", "v2b")] {
            let r = try run(["skopeo", "inspect", "oci:\(dir)/layout:\(tag)"])
            #expect(r.status == 0, "\(r.err)")
            #expect(try jsonOf(r.out)["Labels"]?[AnnotationKey.version]?.stringValue == version)
        }
        #expect(listing(dir + "/layout").allSatisfy { !$0.hasSuffix(".tmp") })
    }

    @Test func dockerArchiveOutputNeedsOnePlatform() throws {
        let dir = try tempDir()
        try SampleImage.write(to: dir + "/b.tar", format: .ociArchive)
        #expect { try build(settings(dir + "/b.tar", "docker-archive:\(dir)/d.tar")) } throws: {
            "\($0)".contains("--platform")
        }
        var s = settings(dir + "/b.tar", "docker-archive:\(dir)/d.tar")
        s.platforms = ["linux/amd64"]
        s.tags = ["registry.example/ai/anything-llm:canary"]
        _ = try build(s)
        let r = try run(["skopeo", "inspect", "docker-archive:\(dir)/d.tar"])
        #expect(r.status == 0, "\(r.err)")
        let manifest = try jsonOf(try run(["bsdtar", "-xOf", dir + "/d.tar", "manifest.json"]).out)
        #expect(manifest.arrayValue?.first?["RepoTags"] == .array([.string("registry.example/ai/anything-llm:canary")]))
    }

    @Test func addsFilesAndFolders() throws {
        let dir = try tempDir()
        try SampleImage.write(to: dir + "/b.tar", format: .ociArchive)
        try FileManager.default.createDirectory(atPath: dir + "/extra/sub", withIntermediateDirectories: true)
        try Data("hello\n".utf8).write(to: URL(fileURLWithPath: dir + "/extra/sub/a.txt"))
        try Data("#!/bin/sh\n".utf8).write(to: URL(fileURLWithPath: dir + "/run.sh"))
        chmod(dir + "/run.sh", 0o755)
        var s = settings(dir + "/b.tar", "oci-archive:\(dir)/o.tar")
        s.add = ["\(dir)/extra:/opt/extra", "\(dir)/run.sh:/usr/local/bin/"]
        let r = try build(s)
        #expect(
            r.layer?.files == [
                "app/health-check-enhanced.sh", "app/server/public/version.json", "app/version.json", "app/version.txt",
                "opt/extra/sub/a.txt", "usr/local/bin/run.sh",
            ])
        let img = try ImageReader.open(.ociArchive(path: dir + "/o.tar", ref: nil))
        let files = try StampReader.files(in: img.images[0].layers.last!, store: img.store)
        #expect(files["opt/extra/sub/a.txt"]?.bytes == Array("hello\n".utf8))
        let listingOut = try run([
            "sh", "-c", "bsdtar -xOf '\(dir)/o.tar' blobs/sha256/\(Digest.hex(r.layer!.digest)) | bsdtar -tvf -",
        ]).out
        let runLine = listingOut.split(separator: "\n").first { $0.hasSuffix(" usr/local/bin/run.sh") }
        #expect(runLine?.hasPrefix("-rwxr-xr-x  0 0      0 ") == true)
        // Every parent has an entry with the base's owner and mode (overlay runtimes would make a
        // missing one root 0755, and the top layer's folder wins); folders the base lacks are root's.
        let lines = listingOut.split(separator: "\n").map(String.init)
        // The sample base's /app is 1000:1000 0755 (SampleImage); the runtime tests check this
        // against podman and dockerd on a real base.
        #expect(lines.contains { $0.hasPrefix("drwxr-xr-x  0 1000   1000 ") && $0.hasSuffix(" app/") }, "\(listingOut)")
        #expect(lines.contains { $0.hasPrefix("drwxr-xr-x  0 0      0 ") && $0.hasSuffix(" opt/") }, "\(listingOut)")
        #expect(lines.contains { $0.hasSuffix(" app/server/public/") }, "\(listingOut)")
    }
}

@Suite struct DockerMediaTypeTests {
    /// A base with Docker v2 schema 2 media types stays Docker (podman reads Healthcheck only
    /// there), layer blobs unchanged; `--format oci` turns it into OCI.
    @Test func dockerV2ManifestStaysDockerUnlessAsked() throws {
        let dir = try tempDir()
        let layout = try simpleLayout(dir)
        try editLayout(
            layout,
            manifest: { m in
                m["mediaType"] = .string(MediaType.dockerManifest)
                var c = m["config"]!
                c["mediaType"] = .string(MediaType.dockerConfig)
                m["config"] = c
                m["layers"] = .array(
                    m["layers"]!.arrayValue!.map { l in
                        var d = Descriptor(json: l)
                        d.mediaType = MediaType.dockerLayerGzip
                        return d.json
                    })
            })
        var index = try readJSON(layout + "/index.json")
        var top = Descriptor(json: index["manifests"]!.arrayValue![0])
        top.mediaType = MediaType.dockerManifest
        index["manifests"] = .array([top.json])
        try Data(JSONValue.encode(index)).write(to: URL(fileURLWithPath: layout + "/index.json"))
        let base = try ImageReader.open(.ociLayout(path: layout, ref: nil))
        #expect(base.images[0].layers.allSatisfy { $0.mediaType == MediaType.dockerLayerGzip })

        _ = try build(settings("oci:\(layout)", "oci-archive:\(dir)/d.tar"))
        let kept = try jsonOf(try run(["skopeo", "inspect", "--raw", "oci-archive:\(dir)/d.tar"]).out)
        #expect(kept["mediaType"]?.stringValue == MediaType.dockerManifest)
        #expect(kept["config"]?["mediaType"]?.stringValue == MediaType.dockerConfig)
        #expect(kept["annotations"] == nil, "Docker's schema 2 has no annotations")
        let dockerLayers = kept["layers"]!.arrayValue!.map(Descriptor.init(json:))
        #expect(dockerLayers.allSatisfy { $0.mediaType == MediaType.dockerLayerGzip })
        #expect(Array(dockerLayers.prefix(3)).map(\.digest) == base.images[0].layers.map(\.digest))
        #expect(Verifier.verify(.ociArchive(path: dir + "/d.tar", ref: nil)).findings.isEmpty)
        // skopeo copies it to a Docker format the same way podman would store it.
        #expect(try run(["skopeo", "copy", "-q", "oci-archive:\(dir)/d.tar", "dir:\(dir)/d-dir"]).status == 0)
        #expect(
            try jsonOf(try run(["cat", dir + "/d-dir/manifest.json"]).out)["mediaType"]?.stringValue
                == MediaType.dockerManifest)

        var s = settings("oci:\(layout)", "oci-archive:\(dir)/o.tar")
        s.format = "oci"
        _ = try build(s)
        let raw = try jsonOf(try run(["skopeo", "inspect", "--raw", "oci-archive:\(dir)/o.tar"]).out)
        #expect(raw["mediaType"]?.stringValue == MediaType.ociManifest)
        #expect(raw["config"]?["mediaType"]?.stringValue == MediaType.ociConfig)
        #expect(raw["annotations"]?[AnnotationKey.version]?.stringValue == "v2.1-canary")
        let layers = raw["layers"]!.arrayValue!.map(Descriptor.init(json:))
        #expect(layers.allSatisfy { $0.mediaType == MediaType.ociLayerGzip })
        #expect(Array(layers.prefix(3)).map(\.digest) == base.images[0].layers.map(\.digest))
        #expect(Verifier.verify(.ociArchive(path: dir + "/o.tar", ref: nil)).findings.isEmpty)
    }
}

/// The stamp layer's parent folders against Python's tarfile, on a base whose folders have an
/// owner, a mode and extended attributes of their own (pax `SCHILY.xattr`), on a cold build and
/// on one that takes the base from the scan cache.
@Suite struct ParentFolderTests {
    static let makeBase = #"""
        import sys
        from image_kit import layer, docker_archive, D, F, L
        l1 = layer([("bin", D, None), ("bin/sh", F, b"#!"), ("bin/curl", F, b"x"), ("app", D, None)])
        l2 = layer([("app", D, None), ("app/server", D, None), ("app/server/public", D, None),
                    ("app/server/public/index.html", F, b"<html></html>"), ("srv", L, "app/server")],
                   owners={"app": (0o2770, 1000), "app/server": (0o750, 1001), "app/server/public": (0o755, 1001),
                           "app/server/public/index.html": (0o644, 1001)},
                   pax={"app": {"SCHILY.xattr.user.note": "team ai"}})
        docker_archive(sys.argv[1], [l1, l2], {"config": {"Env": ["PATH=/bin"]}}, tag="t/base:1")
        """#

    static let listLayer = """
        import sys, tarfile, json
        with tarfile.open(sys.argv[1]) as t:
            for m in t.getmembers():
                print(json.dumps([m.name, "%o" % m.mode, m.uid, m.gid, m.isdir(), {k: v for k, v in m.pax_headers.items() if k.startswith("SCHILY.xattr.")}]))
        """

    @Test func parentsCarryOwnerModeAndXattrsFromTheMergedBase() throws {
        let dir = try tempDir()
        #expect(try python(Self.makeBase, [dir + "/base.tar"]).status == 0)
        var seen: [[String]] = []
        for round in 0..<2 {
            let out = dir + "/o\(round).tar"
            let r = try stamp([
                "build", "--base", "docker-archive:" + dir + "/base.tar", "--output", out, "--version", "v1",
                "--created", "2025-04-05T00:00:00Z", "--hash-assets", "--json",
            ])
            try #require(r.status == 0, "\(r.err)")
            let layer = try #require(try jsonOf(r.out)["layer"]?["digest"]?.stringValue)
            #expect(
                try run([
                    "sh", "-c",
                    "bsdtar -xOf '\(out)' blobs/sha256/\(Digest.hex(layer)) | gzip -dc > '\(dir)/layer\(round).tar'",
                ]).status == 0)
            let list = try run(["python3", "-c", Self.listLayer, dir + "/layer\(round).tar"])
            let lines = list.out.split(separator: "\n").map(String.init)
            seen.append(lines)
            func entry(_ name: String) throws -> [JSONValue] {
                let line = try #require(lines.first { $0.hasPrefix("[\"\(name)\"") }, "no \(name) in \(lines)")
                return try #require(try JSONValue.parse(Array(line.utf8)).arrayValue)
            }
            // The top layer's /app (1000, setgid 2770, its xattr), not the lower one's.
            let app = try entry("app")
            #expect(app[1].stringValue == "2770" && app[2].int64Value == 1000 && app[3].int64Value == 1000, "\(app)")
            #expect(app[5]["SCHILY.xattr.user.note"]?.stringValue == "team ai", "\(app)")
            let server = try entry("app/server")
            #expect(server[1].stringValue == "750" && server[2].int64Value == 1001, "\(server)")
            let public_ = try entry("app/server/public")
            #expect(public_[1].stringValue == "755" && public_[2].int64Value == 1001, "\(public_)")
            // A file stamp rewrote keeps its owner; stamp's own files are root's.
            #expect(lines.contains { $0.hasPrefix("[\"app/version.txt\", \"644\", 0, 0") }, "\(lines)")
        }
        #expect(seen[0] == seen[1], "a build from the scan cache writes the same parents")
        #expect(try bytes(dir + "/layer0.tar") == bytes(dir + "/layer1.tar"))
    }

    /// A stamp path under a folder the base has as a symlink would replace the link: refused.
    @Test func aSymlinkParentIsRefusedWithOneLine() throws {
        let dir = try tempDir()
        #expect(try python(Self.makeBase, [dir + "/base.tar"]).status == 0)
        let r = try stamp([
            "build", "--base", "docker-archive:" + dir + "/base.tar", "--output", dir + "/o.tar", "--version", "v1",
            "--version-file", "/srv/version.txt",
        ])
        #expect(r.status != 0)
        #expect(r.err.contains("/srv is a symlink in the base (to app/server)"), "\(r.err)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/o.tar"))
    }
}
