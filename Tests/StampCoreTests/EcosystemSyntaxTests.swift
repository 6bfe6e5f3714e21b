import Foundation
import Testing
import TestSupport
import OCI
@testable import StampCore

/// What other tools' syntax means in stamp (issue 14, item 9): buildx annotation levels,
/// stamp.yaml in the working folder, flags a command has no use for, image references where a
/// folder is meant.
@Suite struct EcosystemSyntaxTests {
    func stampIn(_ cwd: String, _ args: [String]) throws -> RunResult {
        try run(["sh", "-c", "cd \"$0\" && exec \"$@\"", cwd, stampBin] + args, env: ["STAMP_CACHE_DIR": testCacheDir])
    }

    /// Every buildx level lands where buildx puts it, read back by skopeo from a registry (the
    /// index and each manifest, raw) and from the archive's index.json.
    @Test func buildxAnnotationLevelsLandWhereBuildxPutsThem() throws {
        let reg = try TestRegistry()
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try stamp(["sample", "--output", dir + "/base.tar"])
        let levels = [
            "--annotation", "plain.key=both", "--annotation", "index:idx.key=i", "--annotation", "manifest:man.key=m",
            "--annotation", "manifest[linux/arm64]:arm.key=a", "--annotation", "manifest-descriptor:md.key=d",
            "--annotation", "manifest-descriptor[linux/amd64]:mdamd.key=x",
        ]
        let target = "docker://\(reg.host)/ai/app:levels"
        let r = try stamp(
            [
                "build", "--base", "oci-archive:\(dir)/base.tar:1.16.0", "--version", "v1", "--output", target,
                "--tls-verify=false", "--json",
            ] + levels)
        #expect(r.status == 0, "\(r.err)")
        let index = try jsonOf(try run(["skopeo", "inspect", "--raw", "--tls-verify=false", target]).out)
        let ia = index["annotations"]
        #expect(ia?["idx.key"]?.stringValue == "i" && ia?["plain.key"]?.stringValue == "both")
        #expect(ia?["man.key"] == nil && ia?["arm.key"] == nil && ia?["md.key"] == nil)
        for d in index["manifests"]?.arrayValue ?? [] {
            let arch = d["platform"]?["architecture"]?.stringValue
            #expect(d["annotations"]?["md.key"]?.stringValue == "d")
            #expect((d["annotations"]?["mdamd.key"]?.stringValue == "x") == (arch == "amd64"))
            let m = try jsonOf(
                try run([
                    "skopeo", "inspect", "--raw", "--tls-verify=false",
                    "docker://\(reg.host)/ai/app@\(d["digest"]!.stringValue!)",
                ]).out)
            let ma = m["annotations"]
            #expect(
                ma?["man.key"]?.stringValue == "m" && ma?["plain.key"]?.stringValue == "both" && ma?["idx.key"] == nil)
            #expect(
                (ma?["arm.key"]?.stringValue == "a") == (arch == "arm64"),
                "\(arch ?? "-"): \(ma.map { JSONValue.encodeString($0) } ?? "")")
        }
        // index-descriptor: the descriptor index.json holds (an archive; a registry has none).
        let archive = try stamp([
            "build", "--base", "oci-archive:\(dir)/base.tar:1.16.0", "--version", "v1", "--output", dir + "/out.tar",
            "--annotation", "index-descriptor:top.key=t",
        ])
        #expect(archive.status == 0, "\(archive.err)")
        let layoutIndex = try jsonOf(try run(["bsdtar", "-xOf", dir + "/out.tar", "index.json"]).out)
        #expect(layoutIndex["manifests"]?.arrayValue?.first?["annotations"]?["top.key"]?.stringValue == "t")
        let v = try stamp(["verify", dir + "/out.tar"])
        #expect(v.status == 0, "\(v.out)")

        // Levels that name nothing in this output, and unknown ones, are errors.
        for (args, want) in [
            (
                ["--annotation", "index-descriptor:x=1", "--output", target, "--tls-verify=false"],
                "a registry keeps no descriptor"
            ),
            (["--annotation", "index:x=1", "--platform", "linux/amd64", "--output", dir + "/one.tar"], "no index"),
            (["--annotation", "manfest:x=1", "--output", dir + "/two.tar"], "unknown level \"manfest\""),
            (
                ["--annotation", "index[linux/amd64]:x=1", "--output", dir + "/three.tar"],
                "manifest and manifest-descriptor only"
            ),
            (
                ["--annotation", "manifest:org.opencontainers.image.version=x", "--output", dir + "/four.tar"],
                "set by stamp itself"
            ),
        ] {
            let bad = try stamp(["build", "--base", "oci-archive:\(dir)/base.tar:1.16.0", "--version", "v1"] + args)
            #expect(bad.status == 2 && bad.err.contains(want), "\(args): \(bad.err)")
        }
    }

    @Test func stampYamlInTheWorkingFolderIsRead() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try stamp(["sample", "--output", dir + "/base.tar"])
        try "base: oci-archive:base.tar:1.16.0\nversion: v-from-yaml\noutput: out.tar\nlabel: {team: ai}\n"
            .write(toFile: dir + "/stamp.yaml", atomically: true, encoding: .utf8)
        let r = try stampIn(dir, ["build", "--created", "2025-04-05T00:00:00Z"])
        #expect(r.status == 0, "\(r.err)")
        #expect(r.err.contains("reading ./stamp.yaml"))
        let labels = try jsonOf(try stamp(["inspect", "--json", dir + "/out.tar"]).out)["platforms"]?.arrayValue?
            .first?["labels"]
        #expect(labels?[AnnotationKey.version]?.stringValue == "v-from-yaml" && labels?["team"]?.stringValue == "ai")
        // --config names another; flags still override.
        try "version: v-other\n".write(toFile: dir + "/other.yaml", atomically: true, encoding: .utf8)
        let other = try stampIn(dir, ["build", "--config", "other.yaml", "--base", "base.tar", "--output", "o2.tar"])
        #expect(other.status == 0 && !other.err.contains("reading ./stamp.yaml"), "\(other.err)")
        // dockerfile shares the file but takes its folder from --output only: the file's output
        // (an image reference) is not a folder name.
        let ctx = try stampIn(dir, ["dockerfile", "--output", "ctx"])
        #expect(ctx.status == 0, "\(ctx.err)")
        #expect(FileManager.default.fileExists(atPath: dir + "/ctx/Dockerfile"))
    }

    @Test func flagsACommandHasNoUseForAreRefusedAndUnlisted() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try stamp(["sample", "--output", dir + "/base.tar"])
        for flag in [
            ["--lock", "x.json"], ["--fsync"], ["--compression", "zstd"], ["--compression-level", "3"],
            ["--format", "docker"],
            ["--tag", "v1"], ["--locked"],
        ] {
            let r = try stamp(
                ["dockerfile", "--base", dir + "/base.tar", "--version", "v1", "--output", dir + "/ctx"] + flag)
            #expect(r.status == 64, "dockerfile \(flag[0]): \(r.err)")
        }
        let help = try stamp(["dockerfile", "--help"]).out
        for flag in ["--lock ", "--fsync", "--compression", "--format", "--tag", "--locked"] {
            #expect(!help.contains(flag), "dockerfile --help lists \(flag)")
        }
        #expect(try stamp(["build", "--help"]).out.contains("--fsync"))
        // healthcheck prints the script whatever the image has: no switches about the image.
        let hc = try stamp(["healthcheck", "--help"]).out
        #expect(!hc.contains("--no-healthcheck") && !hc.contains("--allow-missing-client"))
        #expect(try stamp(["healthcheck", "--no-healthcheck"]).status == 64)
    }

    @Test(arguments: ["oci-archive:x.tar", "oci:layout", "docker://localhost:5000/a:b", "docker-archive:x.tar"])
    func anImageReferenceWhereAFolderIsMeantIsAnError(_ ref: String) throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try stamp(["sample", "--output", dir + "/base.tar"])
        let d = try stampIn(dir, ["dockerfile", "--base", "base.tar", "--version", "v1", "--output", ref])
        #expect(d.status == 2 && d.err.contains("not an image reference"), "\(d.err)")
        try FileManager.default.createDirectory(atPath: dir + "/site", withIntermediateDirectories: true)
        try "<p>".write(toFile: dir + "/site/index.html", atomically: true, encoding: .utf8)
        let a = try stampIn(dir, ["assets", "hash", "site", "--output", ref])
        #expect(a.status == 2 && a.err.contains("not an image reference"), "\(a.err)")
        #expect(listing(dir).sorted() == ["base.tar", "site"], "\(listing(dir))")
    }
}
