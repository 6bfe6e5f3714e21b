import Foundation
import Testing
import TestSupport
import OCI
@testable import StampCore

/// The CI front doors (issue 14, item 3): the GitHub Action's steps and the GitLab template's
/// script run here as those platforms run them (Fixtures/ci_runner.py), with the variables a
/// runner sets, and their outputs are asserted; both files are checked against the platforms'
/// own metadata schemas (check-jsonschema's vendored copies of them).
@Suite(.serialized) struct CIFrontDoorTests {
    var fixtures: String { URL(fileURLWithPath: #filePath).deletingLastPathComponent().path + "/Fixtures" }

    /// The python of the tools venv (it has ruamel.yaml, which check-jsonschema brings).
    func toolsPython() -> String? {
        jsonSchemaCheckerOrSkip().map { URL(fileURLWithPath: $0).deletingLastPathComponent().path + "/python" }
    }

    /// The folder holding the stamp under test first on PATH, as an installed stamp would be.
    var pathWithStamp: String {
        URL(fileURLWithPath: stampBin).deletingLastPathComponent().path + ":"
            + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
    }

    @Test func actionAndTemplateMatchThePlatformsSchemas() throws {
        guard let checker = jsonSchemaCheckerOrSkip() else { return }
        let a = try run([checker, "--builtin-schema", "vendor.github-actions", repoRoot + "/action.yml"])
        #expect(a.status == 0, "\(a.out)\(a.err)")
        // And the interface the README promises, pinned by a schema kept here.
        let own = try run([checker, "--schemafile", repoRoot + "/schemas/action.schema.json", repoRoot + "/action.yml"])
        #expect(own.status == 0, "\(own.out)\(own.err)")
        let g = try run([checker, "--builtin-schema", "vendor.gitlab-ci", repoRoot + "/ci/gitlab/stamp.gitlab-ci.yml"])
        #expect(g.status == 0, "\(g.out)\(g.err)")
        // The shell the two run is clean.
        let sc = try run(["shellcheck", repoRoot + "/ci/action/install.sh", repoRoot + "/ci/action/build.sh"])
        #expect(sc.status == 0, "\(sc.out)")
    }

    @Test func theActionsStepsPublishDigestTagsVersionAndMetadata() throws {
        guard let py = toolsPython() else { return }
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try stamp(["sample", "--output", dir + "/base.tar"])
        let inputs: JSONValue = .object([
            ("base", .string("oci-archive:\(dir)/base.tar:1.16.0")), ("version", .string("v2.1-canary-42")),
            ("output", .string("oci-archive:\(dir)/out.tar")), ("tags", .string("v2.1-canary\nlatest")),
            ("args", .string("--label team=ai")), ("install", .string("auto")),
        ])
        let sha = "0123456789abcdef0123456789abcdef01234567"
        let r = try run(
            [
                "sh", "-c", "cd \"$0\" && exec \"$@\"", dir, py, fixtures + "/ci_runner.py", "github",
                repoRoot + "/action.yml", JSONValue.encodeString(inputs),
            ],
            env: [
                "PATH": pathWithStamp, "GITHUB_SHA": sha, "GITHUB_REPOSITORY": "corp/anything-llm",
                "GITHUB_SERVER_URL": "https://git.corp.example", "SOURCE_DATE_EPOCH": "1743811200",
                "STAMP_CACHE_DIR": testCacheDir,
            ])
        #expect(r.status == 0, "\(r.err)")
        let out = try jsonOf(r.out)
        let inspected = try jsonOf(try stamp(["inspect", "--json", dir + "/out.tar"]).out)
        #expect(out["digest"]?.stringValue == inspected["digest"]?.stringValue)
        #expect(out["version"]?.stringValue == "v2.1-canary-42")
        #expect(
            out["tags"]?.stringValue
                == "docker.io/mintplexlabs/anything-llm:v2.1-canary,docker.io/mintplexlabs/anything-llm:latest")
        let meta = try jsonOf(try #require(out["metadata"]?.stringValue))
        #expect(meta["containerimage.digest"] == out["digest"].map { $0 })
        #expect(meta["stamp.revision"]?.stringValue == sha)
        // What the runner's variables gave the image: revision and source.
        let labels = inspected["platforms"]?.arrayValue?.first?["labels"]
        #expect(labels?[AnnotationKey.revision]?.stringValue == sha)
        #expect(labels?[AnnotationKey.source]?.stringValue == "https://git.corp.example/corp/anything-llm")
        #expect(labels?["team"]?.stringValue == "ai")
        // The build step logged its steps as plain lines (a CI log is no terminal).
        #expect(r.err.contains("stamp build --progress plain"))
    }

    @Test func theGitLabTemplateWritesItsDotenvReportAndArtifacts() throws {
        guard let py = toolsPython() else { return }
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try stamp(["sample", "--output", dir + "/base.tar"])
        let vars: JSONValue = .object([
            ("STAMP_BASE", .string("oci-archive:base.tar:1.16.0")), ("STAMP_VERSION", .string("v2.1-canary-7")),
            ("STAMP_OUTPUT", .string("oci-archive:out.tar")), ("STAMP_TAGS", .string("v2.1-canary,stable")),
        ])
        let sha = "89abcdef0123456789abcdef0123456789abcdef"
        let r = try run(
            [
                "sh", "-c", "cd \"$0\" && exec \"$@\"", dir, py, fixtures + "/ci_runner.py", "gitlab",
                repoRoot + "/ci/gitlab/stamp.gitlab-ci.yml",
                ".stamp-build", JSONValue.encodeString(vars),
            ],
            env: [
                "PATH": pathWithStamp, "CI_COMMIT_SHA": sha,
                "CI_PROJECT_URL": "https://gitlab.corp.example/ai/anything-llm",
                "SOURCE_DATE_EPOCH": "1743811200", "STAMP_CACHE_DIR": testCacheDir,
            ])
        #expect(r.status == 0, "\(r.err)")
        let report = try jsonOf(r.out)
        let inspected = try jsonOf(try stamp(["inspect", "--json", dir + "/out.tar"]).out)
        #expect(report["STAMP_DIGEST"]?.stringValue == inspected["digest"]?.stringValue)
        #expect(report["STAMP_VERSION_STAMPED"]?.stringValue == "v2.1-canary-7")
        let labels = inspected["platforms"]?.arrayValue?.first?["labels"]
        #expect(labels?[AnnotationKey.revision]?.stringValue == sha)
        #expect(labels?[AnnotationKey.source]?.stringValue == "https://gitlab.corp.example/ai/anything-llm")
        #expect(
            try String(contentsOfFile: dir + "/stamp.digest", encoding: .utf8) == report["STAMP_DIGEST"]?.stringValue)
    }
}
