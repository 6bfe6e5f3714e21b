import Foundation
import Testing
import TestSupport
import Hashing
import IO
import Layers
import OCI
@testable import StampCore

/// `stamp verify`: exit 0 clean, 1 with one line per finding naming what disagrees.
@Suite struct VerifyTests {
    /// A stamped single-image layout, easy to tamper with.
    func stampedLayout(hashAssets: Bool = false, compression: String? = nil) throws -> (dir: String, layout: String) {
        let dir = try tempDir()
        try SampleImage.write(to: dir + "/b.tar", format: .ociArchive)
        var s = settings(dir + "/b.tar", "oci:\(dir)/out")
        s.platforms = ["linux/amd64"]
        if hashAssets { s.hashAssets = true }
        s.compression = compression
        _ = try build(s)
        return (dir, dir + "/out")
    }

    func verifyCLI(_ ref: String, _ extra: [String] = []) throws -> RunResult { try stamp(["verify", ref] + extra) }

    /// Sets the version label of the layout's config to "v9-forged" (version.json says otherwise).
    func forgeVersionLabel(_ layout: String) throws {
        try editLayout(
            layout,
            config: { c in
                var inner = c["config"]!
                var labels = inner["Labels"]!
                labels[AnnotationKey.version] = .string("v9-forged")
                inner["Labels"] = labels
                c["config"] = inner
            })
    }

    @Test func cleanImagePasses() throws {
        let (_, layout) = try stampedLayout()
        let r = try verifyCLI("oci:\(layout)")
        #expect(r.status == 0, "\(r.out)")
        #expect(r.out.isEmpty)
        #expect(r.err.contains("ok:") && r.err.contains("stamp v2.1-canary"))
        let j = try jsonOf(try verifyCLI("oci:\(layout)", ["--json"]).out)
        #expect(j["ok"] == .bool(true))
        #expect(j["stamp"]?["version"]?.stringValue == "v2.1-canary")
    }

    @Test func labelThatDisagreesWithVersionJSON() throws {
        let (_, layout) = try stampedLayout()
        try forgeVersionLabel(layout)
        let r = try verifyCLI("oci:\(layout)")
        #expect(r.status == 1)
        let lines = r.out.split(separator: "\n")
        #expect(lines.count == 1, "\(r.out)")
        #expect(
            r.out.contains(
                "label org.opencontainers.image.version is \"v9-forged\" but /app/version.json says \"v2.1-canary\""))
    }

    /// `--profile generic` without `--version-json` stamps labels and env only: `verify` passes
    /// it (it failed stamp's own output: "label dev.stamp.version-json is missing"), `inspect`
    /// shows its version, and a label that no longer agrees with the env is still found.
    @Test func aStampOfLabelsAndEnvOnlyIsVerified() throws {
        let dir = try tempDir()
        try SampleImage.write(to: dir + "/b.tar", format: .ociArchive)
        let b = try stamp([
            "build", "--base", dir + "/b.tar", "--version", "v3", "--profile", "generic", "--platform", "linux/amd64",
            "--output", "oci:\(dir)/out",
        ])
        try #require(b.status == 0, "\(b.err)")
        let ok = try verifyCLI("oci:\(dir)/out", ["--json"])
        #expect(ok.status == 0, "\(ok.out)")
        let j = try jsonOf(ok.out)
        #expect(j["stamp"]?["version"]?.stringValue == "v3" && j["stamp"]?["versionJson"] == nil, "\(ok.out)")
        let shown = try stamp(["inspect", "oci:\(dir)/out"])
        #expect(shown.out.contains("Stamp     version v3"), "\(shown.out)")
        try editLayout(
            dir + "/out",
            config: { c in
                var inner = c["config"]!
                inner["Env"] = .array(
                    inner["Env"]!.arrayValue!.map { e in
                        (e.stringValue ?? "").hasPrefix("IMAGE_VERSION=") ? .string("IMAGE_VERSION=v9") : e
                    })
                c["config"] = inner
            })
        let forged = try verifyCLI("oci:\(dir)/out")
        #expect(forged.status == 1)
        #expect(
            forged.out.contains("env IMAGE_VERSION is \"v9\" but label org.opencontainers.image.version says \"v3\""),
            "\(forged.out)")
        #expect(forged.out.split(separator: "\n").count == 1, "\(forged.out)")
    }

    /// `verify -q`: nothing on a clean image, only the findings otherwise (issue 28).
    @Test func quietVerifyPrintsOnlyFindings() throws {
        let (_, layout) = try stampedLayout()
        let clean = try verifyCLI("oci:\(layout)", ["-q"])
        #expect(clean.status == 0 && clean.out.isEmpty && clean.err.isEmpty, "\(clean.out)\(clean.err)")
        try forgeVersionLabel(layout)
        let found = try verifyCLI("oci:\(layout)", ["--quiet"])
        #expect(found.status == 1 && found.err.isEmpty, "\(found.err)")
        #expect(found.out.split(separator: "\n").count == 1 && found.out.contains("v9-forged"), "\(found.out)")
    }

    @Test func envAndAnnotationMismatchesAreEachReported() throws {
        let (_, layout) = try stampedLayout()
        try editLayout(
            layout,
            config: { c in
                var inner = c["config"]!
                inner["Env"] = .array(
                    (inner["Env"]!.arrayValue!).filter { !($0.stringValue ?? "").hasPrefix("IMAGE_REVISION=") })
                c["config"] = inner
            },
            manifest: { m in
                var a = m["annotations"]!
                a[AnnotationKey.created] = .string("2030-01-01T00:00:00Z")
                m["annotations"] = a
            })
        let r = try verifyCLI("oci:\(layout)")
        #expect(r.status == 1)
        #expect(r.out.contains("env IMAGE_REVISION is missing"))
        #expect(r.out.contains("manifest annotation org.opencontainers.image.created is \"2030-01-01T00:00:00Z\""))
        #expect(r.out.split(separator: "\n").count == 2, "\(r.out)")
    }

    /// The diff_id of every layer is checked, also when the same pass parses the tar for the
    /// asset checks (gzip: hashed as ISA-L inflates it; zstd: a raw pass of its own).
    @Test(arguments: [(false, "gzip"), (true, "gzip"), (true, "zstd")])
    func wrongDiffIDIsCaught(_ hashAssets: Bool, _ compression: String) throws {
        let (_, layout) = try stampedLayout(hashAssets: hashAssets, compression: compression)
        #expect(try verifyCLI("oci:\(layout)").status == 0)
        let forged = "sha256:" + String(repeating: "0", count: 64)
        try editLayout(
            layout,
            config: { c in
                var rootfs = c["rootfs"]!
                var ids = rootfs["diff_ids"]!.arrayValue!
                ids[0] = .string(forged)
                rootfs["diff_ids"] = .array(ids)
                c["rootfs"] = rootfs
            })
        let r = try verifyCLI("oci:\(layout)")
        #expect(r.status == 1)
        #expect(r.out.contains("layer 0"))
        #expect(r.out.contains("diff_id mismatch: config says \(forged)"))
        // The stamp layer (zstd when asked) too.
        let (_, second) = try stampedLayout(hashAssets: hashAssets, compression: compression)
        var last = 0
        try editLayout(
            second,
            config: { c in
                var rootfs = c["rootfs"]!
                var ids = rootfs["diff_ids"]!.arrayValue!
                last = ids.count - 1
                ids[last] = .string(forged)
                rootfs["diff_ids"] = .array(ids)
                c["rootfs"] = rootfs
            })
        let top = try verifyCLI("oci:\(second)")
        #expect(top.status == 1)
        #expect(
            top.out.contains("layer \(last) ") && top.out.contains("diff_id mismatch: config says \(forged)"),
            "\(top.out)")
    }

    @Test func historyOutOfStepWithLayers() throws {
        let (_, layout) = try stampedLayout()
        try editLayout(
            layout,
            config: { c in
                c["history"] = .array(Array(c["history"]!.arrayValue!.dropLast()))
            })
        let r = try verifyCLI("oci:\(layout)")
        #expect(r.status == 1)
        #expect(r.out.contains("history has 3 entries that make layers, the manifest has 4 layers"), "\(r.out)")
    }

    @Test func corruptedLayerBlob() throws {
        let (_, layout) = try stampedLayout()
        let layer = try firstLayerPath(layout)
        var b = try bytes(layer)
        b[20] ^= 0x55
        try Data(b).write(to: URL(fileURLWithPath: layer))
        let r = try verifyCLI("oci:\(layout)")
        #expect(r.status == 1)
        #expect(r.out.contains("sha256:" + Path.basename(layer)), "\(r.out)")
    }

    @Test func versionTxtThatDisagrees() throws {
        // A stamp layer whose version.txt says something else, built by hand.
        let (dir, layout) = try stampedLayout()
        let tar = MemorySink()
        let tw = TarWriter(sink: tar, mtime: 0)
        let img = try ImageReader.open(.ociLayout(path: layout, ref: nil))
        let files = try StampReader.files(in: img.images[0].layers.last!, store: img.store)
        try tw.addFile("app/version.json", files["app/version.json"]!.bytes)
        try tw.addFile("app/version.txt", Array("v0-old\n".utf8))
        try tw.finish()
        try replaceLastLayer(of: layout, with: tar.bytes)
        _ = dir
        let r = try verifyCLI("oci:\(layout)")
        #expect(r.status == 1)
        #expect(
            r.out.contains("/app/version.txt holds \"v0-old\" but /app/version.json says \"v2.1-canary\""), "\(r.out)")
    }

    /// A stamp layer of more files than verify lists on its first read (a hashed frontend of
    /// thousands): the files version.json names are read by name, and checked as before.
    @Test func aStampLayerOfManyFilesIsCheckedByName() throws {
        let (_, layout) = try stampedLayout()
        let tar = MemorySink()
        let tw = TarWriter(sink: tar, mtime: 0)
        let img = try ImageReader.open(.ociLayout(path: layout, ref: nil))
        let files = try StampReader.files(in: img.images[0].layers.last!, store: img.store)
        for i in 0..<(StampReader.listedEntries + 100) { try tw.addFile("app/filler/f-\(i).txt", Array("\(i)".utf8)) }
        try tw.addFile("app/health-check-enhanced.sh", files["app/health-check-enhanced.sh"]!.bytes, mode: 0o755)
        try tw.addFile("app/server/public/version.json", files["app/server/public/version.json"]!.bytes)
        try tw.addFile("app/version.json", files["app/version.json"]!.bytes)
        try tw.addFile("app/version.txt", Array("v0-old\n".utf8))
        try tw.finish()
        try replaceLastLayer(of: layout, with: tar.bytes)
        let top = try ImageReader.open(.ociLayout(path: layout, ref: nil)).images[0].layers.last!
        let first = try StampReader.files(
            in: top, store: img.store, wanted: ["app/version.json"], maxEntries: StampReader.listedEntries)
        #expect(!first.complete && first.files["app/version.txt"] == nil)
        let r = try verifyCLI("oci:\(layout)")
        #expect(r.status == 1)
        #expect(r.out.split(separator: "\n").count == 1, "\(r.out)")
        #expect(
            r.out.contains("/app/version.txt holds \"v0-old\" but /app/version.json says \"v2.1-canary\""), "\(r.out)")
    }

    @Test func unstampedBase() throws {
        let dir = try tempDir()
        try SampleImage.write(to: dir + "/b.tar", format: .ociArchive)
        let r = try verifyCLI(dir + "/b.tar")
        #expect(r.status == 1)
        #expect(r.out.contains("not stamped"))
        let i = try verifyCLI(dir + "/b.tar", ["--integrity-only"])
        #expect(i.status == 0, "\(i.out)")
    }

    /// A registry host that does not exist fails at once (it took 68 s of retries).
    @Test func anUnknownRegistryHostFailsAtOnce() throws {
        let start = Date()
        let r = try stamp(["inspect", "docker://no-such-host.invalid/ai/app:v1"])
        #expect(r.status == 2)
        #expect(
            r.err
                == "stamp: error: no-such-host.invalid: cannot resolve the host name (it does not exist, or is "
                + "mistyped)\n",
            "\(r.err)")
        #expect(Date().timeIntervalSince(start) < 2, "took \(Date().timeIntervalSince(start)) s")
    }

    @Test func aUsageErrorIsExit64() throws {
        let r = try stamp(["build", "--no-such-flag"])
        #expect(r.status == 64, "\(r.err)")
        #expect(try stamp(["verify"]).status == 64)
    }

    /// Exit 2, one line on stderr: verify could not run (it says so in `--help`); findings are 1.
    @Test func aMissingImageOrAnUnreachableRegistryIsExit2() throws {
        let dir = try tempDir()
        let r = try verifyCLI(dir + "/missing.tar")
        #expect(r.status == 2)
        #expect(
            r.out.isEmpty && r.err == "stamp: error: \(dir)/missing.tar: no such file or directory\n",
            "\(r.out)|\(r.err)")
        let port = freePort()
        let unreachable = try stamp(
            ["verify", "docker://127.0.0.1:\(port)/x:y", "--tls-verify=false"], env: ["STAMP_REGISTRY_DEADLINE": "5"])
        #expect(unreachable.status == 2, "\(unreachable.out)\(unreachable.err)")
        #expect(unreachable.err.split(separator: "\n").last?.hasPrefix("stamp: error: ") == true, "\(unreachable.err)")
    }
}

/// `stamp version`: the versions it prints are those of the Debian packages installed.
@Suite struct VersionTests {
    /// It names the commit it was built from (issue 28): this checkout's HEAD, as git says.
    @Test func itNamesTheCommitItWasBuiltFrom() throws {
        let head = try run(["git", "-C", repoRoot, "rev-parse", "HEAD"])
        try #require(head.status == 0, "\(head.err)")
        let j = try jsonOf(try stamp(["version", "--json"]).out)
        let commit = j["commit"]?.stringValue ?? ""
        #expect(commit.hasPrefix(head.out.trimmingCharacters(in: .whitespacesAndNewlines)), "\(commit)")
        #expect(try stamp(["version"]).out.contains("commit      \(commit)\n"))
    }

    @Test func librariesMatchTheInstalledPackages() throws {
        let j = try jsonOf(try stamp(["version", "--json"]).out)
        #expect(j["stamp"]?.stringValue?.isEmpty == false)
        for (key, package) in [
            ("libdeflate", "libdeflate0"), ("isa-l", "libisal2"), ("libarchive", "libarchive13"),
            ("openssl", "libssl3"),
        ] {
            let installed = try run(["dpkg-query", "-W", "-f", "${Version}", package]).out
            // Debian's version is the upstream one, a dash, and Debian's revision.
            let upstream = String(installed.split(separator: "-").first ?? "")
            #expect(
                !upstream.isEmpty && j[key]?.stringValue == upstream,
                "\(key): \(j[key]?.stringValue ?? "-") vs \(package) \(installed)")
        }
    }
}
