import Foundation
import Testing
import TestSupport
import Hashing
import IO
import OCI
@testable import StampCore

/// The machine contract (issue 14, item 4): every `--json` output carries `schemaVersion`, names
/// platforms one way, and validates against its JSON Schema in `schemas/` — checked by
/// check-jsonschema (PyPI), not by stamp's own reader; verify's findings are objects with
/// stable codes.
@Suite struct ContractTests {
    /// Runs stamp, returns stdout after checking the exit status.
    func json(_ args: [String], status: Int32 = 0, env: [String: String] = [:]) throws -> String {
        let r = try stamp(args, env: env)
        #expect(r.status == status, "stamp \(args.joined(separator: " ")): \(r.err)")
        return r.out
    }

    func expectValid(_ text: String, _ schema: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect(
            try schemaComplaint(text, schema: schema) == nil, "\(schema): \(text.prefix(300))",
            sourceLocation: sourceLocation)
        #expect(
            try jsonOf(text)["schemaVersion"]?.int64Value == 1, "\(schema) output has no schemaVersion 1",
            sourceLocation: sourceLocation)
    }

    @Test func everyJSONOutputValidatesAgainstItsSchema() throws {
        guard jsonSchemaChecker() != nil else { return }
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try stamp(["sample", "--output", dir + "/base.tar"])
        let env = ["SOURCE_DATE_EPOCH": "1743811200"]
        let built = try json(
            [
                "build", "--base", "oci-archive:\(dir)/base.tar:1.16.0", "--version", "v2.1", "--revision", "abc123",
                "--output", dir + "/out.tar", "--json", "--metadata-file", dir + "/meta.json",
            ], env: env)
        try expectValid(built, "build")
        let verified = try json(["verify", "--json", dir + "/out.tar"])
        try expectValid(verified, "verify")
        let inspected = try json(["inspect", "--json", dir + "/out.tar"])
        try expectValid(inspected, "inspect")
        try expectValid(try json(["version", "--json"]), "version")

        // One shape for platforms: build, verify and inspect name the same three digests.
        let shape = { (t: String) throws -> [String] in
            (try jsonOf(t)["platforms"]?.arrayValue ?? []).map { p in
                ["platform", "manifest", "config"].map { p[$0]?.stringValue ?? "-" }.joined(separator: " ")
            }
        }
        #expect(try shape(built) == shape(verified))
        #expect(try shape(built) == shape(inspected))
        #expect(try shape(built).count == 2)
        #expect(try jsonOf(verified)["digest"] == jsonOf(built)["digest"])

        // Findings as objects: an unstamped image, and a folder that cannot be read (exit 2).
        let unstamped = try json(["verify", "--json", dir + "/base.tar"], status: 1)
        try expectValid(unstamped, "verify")
        #expect(try jsonOf(unstamped)["findings"]?.arrayValue?.first?["code"]?.stringValue == "stamp.missing")
        let missing = try json(["verify", "--json", dir + "/nope.tar"], status: 2)
        try expectValid(missing, "verify")
        #expect(try jsonOf(missing)["error"]?.stringValue?.contains("no such file") == true)

        // Assets: hash, verify clean, verify with findings.
        try FileManager.default.createDirectory(atPath: dir + "/site/assets", withIntermediateDirectories: true)
        try #"<link rel="stylesheet" href="assets/app.css"><img src="assets/logo.png">"#.write(
            toFile: dir + "/site/index.html", atomically: true, encoding: .utf8)
        try "body{background:url(logo.png)}".write(
            toFile: dir + "/site/assets/app.css", atomically: true, encoding: .utf8)
        try "PNG".write(toFile: dir + "/site/assets/logo.png", atomically: true, encoding: .utf8)
        try expectValid(
            try json(["assets", "hash", dir + "/site", "--output", dir + "/hashed", "--json"]), "assets-hash")
        try expectValid(try json(["assets", "verify", dir + "/hashed", "--json"]), "assets-verify")
        let logo = try #require(listing(dir + "/hashed/assets").first { $0.hasPrefix("logo.") })
        try "GIF".write(toFile: dir + "/hashed/assets/" + logo, atomically: true, encoding: .utf8)
        let broken = try json(["assets", "verify", dir + "/hashed", "--json"], status: 1)
        try expectValid(broken, "assets-verify")
        let codes = Set((try jsonOf(broken)["findings"]?.arrayValue ?? []).compactMap { $0["code"]?.stringValue })
        #expect(codes.contains("assets.sha256-mismatch") && codes.contains("assets.name-mismatch"), "\(codes)")
    }

    /// Every command given --json prints an error document on stdout when it fails, the same
    /// line as stderr (issue 28: `build --json` printed nothing, a pipeline reading stdout was
    /// left with an empty string); validated against schemas/error.schema.json.
    @Test func everyJSONCommandPrintsAnErrorDocumentWhenItFails() throws {
        guard jsonSchemaChecker() != nil else { return }
        let dir = try tempDir()
        let missing = dir + "/missing.tar"
        let cases: [[String]] = [
            ["build", "--base", missing, "--version", "v1", "--output", dir + "/o.tar", "--json"],
            ["inspect", "--json", missing],
            ["push", missing, "docker://127.0.0.1:\(freePort())/a/b:c", "--tls-verify=false", "--json"],
            ["pull", "docker://127.0.0.1:\(freePort())/a/b:c", dir + "/p.tar", "--tls-verify=false", "--json"],
            ["assets", "hash", dir + "/no-folder", "--output", dir + "/h", "--json"],
            ["canary", "weight", "5", dir + "/no-folder", "--json"],
            ["canary", "check", dir + "/no-folder", "--json"],
        ]
        for args in cases {
            let r = try stamp(args)
            #expect(r.status == 2, "\(args): \(r.status) \(r.err)")
            try expectValid(r.out, "error")
            let line = try jsonOf(r.out)["error"]?.stringValue ?? "none"
            #expect(r.err == "stamp: error: \(line)\n", "\(args): \(r.err)")
        }
    }

    @Test func metadataFileValidatesAgainstItsSchema() throws {
        guard jsonSchemaChecker() != nil else { return }
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try stamp(["sample", "--output", dir + "/base.tar"])
        try stamp([
            "build", "--base", dir + "/base.tar", "--version", "v1", "--output", dir + "/out.tar", "--tag", "v1",
            "--metadata-file", dir + "/meta.json",
        ])
        let meta = String(decoding: try bytes(dir + "/meta.json"), as: UTF8.self)
        #expect(try schemaComplaint(meta, schema: "metadata") == nil, "\(meta)")
    }

    /// The keys buildx writes for an image, as a pipeline written for buildx reads them (issue
    /// 28): every name comma-joined; for one platform the descriptor's `platform` and the config
    /// digest, both as skopeo reads the image; for several, neither (there is no one config).
    @Test func theMetadataFileHasBuildxsKeys() throws {
        guard jsonSchemaChecker() != nil else { return }
        let dir = try tempDir()
        try stamp(["sample", "--output", dir + "/base.tar"])
        try stamp([
            "build", "--base", dir + "/base.tar", "--version", "v1", "--platform", "linux/arm64/v8",
            "--output", dir + "/one.tar", "--tag", "v1", "--tag", "stable", "--metadata-file", dir + "/one.json",
        ])
        let text = String(decoding: try bytes(dir + "/one.json"), as: UTF8.self)
        #expect(try schemaComplaint(text, schema: "metadata") == nil, "\(text)")
        let one = try jsonOf(text)
        #expect(one["schemaVersion"]?.int64Value == 1)
        let names = one["image.name"]?.stringValue?.split(separator: ",").map(String.init) ?? []
        #expect(names.count == 2 && names[0].hasSuffix(":v1") && names[1].hasSuffix(":stable"), "\(names)")
        let config = try run(["skopeo", "inspect", "--raw", "--config", "oci-archive:" + dir + "/one.tar:v1"])
        try #require(config.status == 0, "\(config.err)")
        #expect(one["containerimage.config.digest"]?.stringValue == Digester.digest(Array(config.out.utf8)))
        let platform = one["containerimage.descriptor"]?["platform"]
        #expect(platform?["os"]?.stringValue == "linux" && platform?["architecture"]?.stringValue == "arm64")
        #expect(platform?["variant"]?.stringValue == "v8")

        try stamp([
            "build", "--base", dir + "/base.tar", "--version", "v1", "--output", dir + "/two.tar",
            "--metadata-file", dir + "/two.json",
        ])
        let two = try jsonOf(String(decoding: try bytes(dir + "/two.json"), as: UTF8.self))
        #expect(two["containerimage.config.digest"] == nil && two["containerimage.descriptor"]?["platform"] == nil)
    }

    /// `inspect` answers the everyday questions (issue 28): how the image runs (entrypoint,
    /// cmd, user, workdir, ports, env), one platform (`--platform`), and the documents as stored
    /// (`--raw`, `--config`), byte for byte as skopeo reads them.
    @Test func inspectShowsHowTheImageRunsAndTheDocumentsAsStored() throws {
        guard jsonSchemaChecker() != nil else { return }
        let dir = try tempDir()
        try stamp(["sample", "--output", dir + "/base.tar"])
        let doc = try json(["inspect", "--json", "--platform", "linux/arm64", dir + "/base.tar"])
        try expectValid(doc, "inspect")
        let platforms = try jsonOf(doc)["platforms"]?.arrayValue ?? []
        #expect(platforms.count == 1 && platforms.first?["platform"]?.stringValue == "linux/arm64/v8")
        let config = try run(["skopeo", "inspect", "--config", "oci-archive:" + dir + "/base.tar"])
        try #require(config.status == 0, "\(config.err)")
        let c = try jsonOf(config.out)["config"]
        #expect(platforms.first?["entrypoint"] == c?["Entrypoint"])
        #expect(platforms.first?["user"] == c?["User"] && platforms.first?["workingDir"] == c?["WorkingDir"])
        let text = try json(["inspect", dir + "/base.tar"])
        #expect(text.contains("  entrypoint  [\"/bin/bash\",\"/usr/local/bin/docker-entrypoint.sh\"]"), "\(text)")
        #expect(
            text.contains("  runs as    user anythingllm  workdir /app") && text.contains("    NODE_ENV=production"))

        let top = try stamp(["inspect", "--raw", dir + "/base.tar"])
        let skopeoTop = try run(["skopeo", "inspect", "--raw", "oci-archive:" + dir + "/base.tar"])
        #expect(top.status == 0 && top.out == skopeoTop.out && !top.out.isEmpty)
        let amd64 = try stamp(["inspect", "--config", "--platform", "linux/amd64", dir + "/base.tar"])
        let skopeoConfig = try run(["skopeo", "inspect", "--raw", "--config", "oci-archive:" + dir + "/base.tar"])
        #expect(amd64.status == 0 && amd64.out == skopeoConfig.out && !amd64.out.isEmpty)
        let both = try stamp(["inspect", "--config", dir + "/base.tar"])
        #expect(both.status == 2 && both.err.contains("choose one with --platform"), "\(both.err)")
        let none = try stamp(["inspect", "--platform", "linux/s390x", dir + "/base.tar"])
        #expect(none.status == 2 && none.err.contains("it has linux/amd64, linux/arm64/v8"), "\(none.err)")
        // A docker save archive stores no manifest: --raw writes the one whose digest it has.
        try stamp(["sample", "--output", dir + "/d.tar", "--format", "docker-archive", "--platform", "linux/amd64"])
        let implied = try stamp(["inspect", "--raw", dir + "/d.tar"])
        let digest = try jsonOf(try json(["inspect", "--json", dir + "/d.tar"]))["digest"]?.stringValue
        #expect(implied.status == 0 && Digester.digest(Array(implied.out.utf8)) == digest, "\(implied.err)")
    }

    @Test func pushAndPullJSONValidateAgainstTheirSchema() throws {
        guard jsonSchemaChecker() != nil else { return }
        let reg = try TestRegistry()
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try stamp(["sample", "--output", dir + "/base.tar"])
        let pushed = try json(["push", dir + "/base.tar", "\(reg.host)/ai/app:v1", "--tls-verify=false", "--json"])
        try expectValid(pushed, "copy")
        #expect(try jsonOf(pushed)["push"]?["blobs"]?["uploaded"]?.int64Value ?? 0 > 0)
        let pulled = try json([
            "pull", "docker://\(reg.host)/ai/app:v1", "oci-archive:\(dir)/pulled.tar", "--tls-verify=false", "--json",
        ])
        try expectValid(pulled, "copy")
        #expect(try jsonOf(pulled)["digest"] == jsonOf(pushed)["digest"])

        // push writes what build writes for a pipeline (issue 28): the digest file, the metadata
        // file, the step outputs; the digest is what skopeo reads from the registry.
        try "".write(toFile: dir + "/github-output", atomically: true, encoding: .utf8)
        let again = try stamp(
            [
                "push", dir + "/base.tar", "\(reg.host)/ai/app:v2", "--tls-verify=false", "--digestfile",
                dir + "/digest", "--metadata-file", dir + "/meta.json",
            ], env: ["GITHUB_OUTPUT": dir + "/github-output"])
        #expect(again.status == 0, "\(again.err)")
        let inspected = try run([
            "skopeo", "inspect", "--tls-verify=false", "--raw", "docker://\(reg.host)/ai/app:v2",
        ])
        let digest = Digester.digest(Array(inspected.out.utf8))
        #expect(try String(contentsOfFile: dir + "/digest", encoding: .utf8) == digest)
        let meta = try String(contentsOfFile: dir + "/meta.json", encoding: .utf8)
        try expectValid(meta, "push-metadata")
        #expect(try jsonOf(meta)["image.name"]?.stringValue == "\(reg.host)/ai/app:v2")
        let outputs = try String(contentsOfFile: dir + "/github-output", encoding: .utf8)
        #expect(outputs.hasPrefix("digest=\(digest)\nimage=\(reg.host)/ai/app:v2\nmetadata={"), "\(outputs)")
    }

    /// The codes the schema lists are exactly the codes stamp can emit.
    @Test func findingCodesInTheSchemaAreStampsCodes() throws {
        let schema = try readJSON(repoRoot + "/schemas/common.schema.json")
        let listed = (schema["$defs"]?["finding"]?["properties"]?["code"]?["enum"]?.arrayValue ?? []).compactMap(
            \.stringValue)
        #expect(listed == Finding.Code.allCases.map(\.rawValue))
    }

    /// A tampered layer and a tampered label each give a finding with the facts in fields, not
    /// only in the sentence.
    @Test func verifyFindingsCarryTheirFacts() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let base = try simpleLayout(dir)
        var s = settings("oci:" + base, "oci:\(dir)/out")
        s.noHealthcheck = true
        _ = try build(s)
        // A label edited after the build (digests fixed up the chain, as a careless tool would).
        try FileManager.default.copyItem(atPath: dir + "/out", toPath: dir + "/edited")
        try editLayout(
            dir + "/edited",
            config: { c in
                var inner = c["config"]!, labels = inner["Labels"]!
                labels[AnnotationKey.version] = .string("v9")
                inner["Labels"] = labels
                c["config"] = inner
            })
        let edited = Verifier.verify(.ociLayout(path: dir + "/edited", ref: nil))
        let label = try #require(
            edited.findings.first { $0.code == .stampValueMismatch && $0.message.contains("label") })
        #expect(
            label.expected == "v2.1-canary" && label.found == "v9" && label.platform == "linux/amd64"
                && label.path == "/app/version.json")

        // A layer whose bytes changed but not its size.
        let layer = try firstLayerPath(dir + "/out")
        var b = try bytes(layer)
        b[b.count / 2] ^= 0xff
        try Data(b).write(to: URL(fileURLWithPath: layer))
        let report = Verifier.verify(.ociLayout(path: dir + "/out", ref: nil))
        let digest = "sha256:" + Path.basename(layer)
        let f = try #require(
            report.findings.first { $0.code == .blobDigestMismatch || $0.code == .layerUndecompressable })
        #expect(f.digest == digest)
        if f.code == .blobDigestMismatch { #expect(f.expected == digest && f.found == Digester.digest(b)) }
        #expect(report.json["findings"]?.arrayValue?.first?["code"]?.stringValue == f.code.rawValue)
    }
}
