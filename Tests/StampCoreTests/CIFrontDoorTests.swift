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
        jsonSchemaChecker().map { URL(fileURLWithPath: $0).deletingLastPathComponent().path + "/python" }
    }

    /// The folder holding the stamp under test first on PATH, as an installed stamp would be.
    var pathWithStamp: String {
        URL(fileURLWithPath: stampBin).deletingLastPathComponent().path + ":"
            + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
    }

    @Test func actionAndTemplateMatchThePlatformsSchemas() throws {
        guard let checker = jsonSchemaChecker() else { return }
        let a = try run([checker, "--builtin-schema", "vendor.github-actions", repoRoot + "/action.yml"])
        #expect(a.status == 0, "\(a.out)\(a.err)")
        // And the interface the README promises, pinned by a schema kept here.
        let own = try run([checker, "--schemafile", repoRoot + "/schemas/action.schema.json", repoRoot + "/action.yml"])
        #expect(own.status == 0, "\(own.out)\(own.err)")
        let g = try run([checker, "--builtin-schema", "vendor.gitlab-ci", repoRoot + "/ci/gitlab/stamp.gitlab-ci.yml"])
        #expect(g.status == 0, "\(g.out)\(g.err)")
        // zizmor (the GitHub Actions security linter), every audit, finds nothing in the Action.
        let zizmor = try pypiCommand("zizmor", "zizmor")
        let z = try run([zizmor, "--offline", "--persona", "auditor", "--no-progress", repoRoot + "/action.yml"])
        #expect(z.status == 0 && z.out.contains("No findings"), "\(z.out)\(z.err)")
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

    // MARK: - Hostile inputs (issue 27, point 12)

    /// A folder with a `stamp` first on PATH that records its arguments (NUL-separated, in
    /// `argv`) and then runs the stamp under test: what the front door passed, exactly, and what
    /// the real build made of it.
    func recordingStamp(in dir: String) throws -> (path: String, argv: () throws -> [String]) {
        let bin = dir + "/probe-bin"
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        let script = "#!/bin/sh\nprintf '%s\\0' \"$@\" > '\(dir)/argv'\nexec '\(stampBin)' \"$@\"\n"
        try script.write(toFile: bin + "/stamp", atomically: true, encoding: .utf8)
        chmod(bin + "/stamp", 0o755)
        let path = bin + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
        return (
            path,
            {
                let raw = try String(contentsOfFile: dir + "/argv", encoding: .utf8)
                return raw.split(separator: "\0", omittingEmptySubsequences: false).dropLast().map(String.init)
            }
        )
    }

    func runAction(_ inputs: [(String, String)], in dir: String, path: String) throws -> RunResult {
        guard let py = toolsPython() else { throw StampError.badInput("no tools python") }
        return try run(
            [
                "sh", "-c", "cd \"$0\" && exec \"$@\"", dir, py, fixtures + "/ci_runner.py", "github",
                repoRoot + "/action.yml", JSONValue.encodeString(.object(inputs.map { ($0.0, .string($0.1)) })),
            ],
            env: [
                "PATH": path, "GITHUB_SHA": "0123456789abcdef0123456789abcdef01234567",
                "GITHUB_REPOSITORY": "corp/anything-llm", "GITHUB_SERVER_URL": "https://git.corp.example",
                "SOURCE_DATE_EPOCH": "1743811200", "STAMP_CACHE_DIR": testCacheDir,
            ])
    }

    /// Multi-line `args` arrive one argument per line, `--name value` as the option and its whole
    /// value (quotes removed, spaces kept); tags split on commas, spaces and newlines; a `*`
    /// reaches stamp as `*`, not as the files of the working folder.
    @Test func theActionPassesEachInputWholeNeverGlobbedNorSplit() throws {
        guard toolsPython() != nil else { return }
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try stamp(["sample", "--output", dir + "/base.tar"])
        for f in ["glob-a", "glob-b"] { FileManager.default.createFile(atPath: dir + "/" + f, contents: Data()) }
        let probe = try recordingStamp(in: dir)
        let r = try runAction(
            [
                ("base", "oci-archive:\(dir)/base.tar:1.16.0"), ("version", "v2.1-canary-42"),
                ("output", "oci-archive:\(dir)/out.tar"), ("tags", "v2.1-canary latest,\n rc-1\r\nrc-2 "),
                (
                    "args",
                    "--label team=AI team\n  --label \"owner=ml platform\"\r\n\n--annotation=org.example.ticket=REL 42\n"
                ),
            ], in: dir, path: probe.path)
        #expect(r.status == 0, "\(r.err)")
        let argv = try probe.argv()
        #expect(
            argv == [
                "build", "--progress", "plain", "--base", "oci-archive:\(dir)/base.tar:1.16.0", "--version",
                "v2.1-canary-42", "--output", "oci-archive:\(dir)/out.tar", "--tag", "v2.1-canary", "--tag", "latest",
                "--tag", "rc-1", "--tag", "rc-2", "--label", "team=AI team", "--label", "owner=ml platform",
                "--annotation=org.example.ticket=REL 42",
            ])
        let inspected = try jsonOf(try stamp(["inspect", "--json", dir + "/out.tar"]).out)
        let labels = inspected["platforms"]?.arrayValue?.first?["labels"]
        #expect(labels?["team"]?.stringValue == "AI team")
        #expect(labels?["owner"]?.stringValue == "ml platform")
        let out = try jsonOf(r.out)
        #expect(out["tags"]?.stringValue?.split(separator: ",").count == 4)

        // A `*` tag is passed as `*` (stamp refuses it by name), never as glob-a and glob-b.
        let g = try runAction(
            [
                ("base", "oci-archive:\(dir)/base.tar:1.16.0"), ("version", "v2"),
                ("output", "oci-archive:\(dir)/out2.tar"), ("tags", "*"), ("args", "--label x=*"),
            ], in: dir, path: probe.path)
        #expect(g.status != 0)
        let gargv = try probe.argv()
        #expect(gargv.contains("*") && gargv.contains("x=*") && !gargv.contains("glob-a"), "\(gargv)")

        // Two options on one line of args is refused with the reason, before stamp builds.
        let two = try runAction(
            [
                ("base", "oci-archive:\(dir)/base.tar:1.16.0"), ("version", "v2"),
                ("args", "--hash-assets --label team=ai"),
            ], in: dir, path: probe.path)
        #expect(two.status != 0)
        #expect(two.err.contains("args line 1 holds two options"), "\(two.err)")
        #expect(try probe.argv() == ["--version"], "only the install step's `stamp --version` ran")
    }

    /// Inputs never become workflow commands: the runner's own parser (the emulator's) finds no
    /// command in the log of a build whose base path holds `##[set-output ...]` nor of one whose
    /// version holds a newline and `::set-output`, and the install step's error escapes its input.
    @Test func hostileInputsNeverBecomeWorkflowCommands() throws {
        guard toolsPython() != nil else { return }
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let hostileBase = dir + "/##[set-output name=digest;]evil.tar"
        try stamp(["sample", "--output", hostileBase])
        let path = pathWithStamp
        let ok = try runAction(
            [("base", "oci-archive:\(hostileBase):1.16.0"), ("version", "v1"), ("output", "oci-archive:\(dir)/o.tar")],
            in: dir, path: path)
        #expect(ok.status == 0, "\(ok.err)")
        #expect(ok.err.contains("set-output name=digest;]evil"), "the path is in the log, as text")
        let okOut = try jsonOf(ok.out)
        #expect(okOut["_commands"]?.arrayValue?.isEmpty == true, "\(ok.out)")
        #expect(okOut["digest"]?.stringValue?.hasPrefix("sha256:") == true)

        let bad = try runAction(
            [
                ("base", "oci-archive:\(hostileBase):1.16.0"),
                ("version", "v1\n::set-output name=digest::evil\n::warning::injected"),
                ("args", "--label\n::error::injected too"),
            ], in: dir, path: path)
        #expect(bad.status != 0)
        let badOut = try jsonOf(try #require(bad.out.split(separator: "\n").first.map(String.init)))
        #expect(badOut["_commands"]?.arrayValue?.isEmpty == true, "\(bad.out)")

        let inst = try runAction([("install", "maybe\n::set-output name=digest::evil")], in: dir, path: path)
        #expect(inst.status != 0)
        let instOut = try jsonOf(try #require(inst.out.split(separator: "\n").first.map(String.init)))
        let commands = instOut["_commands"]?.arrayValue?.compactMap(\.stringValue) ?? []
        #expect(commands.count == 1 && commands.first?.hasPrefix("::error::") == true, "\(commands)")
        #expect(commands.first?.contains("maybe%0A::set-output") == true, "\(commands)")
    }

    /// The GitLab template: STAMP_TAGS never globs nor glues, STAMP_ARGS arrives one argument
    /// per line with `--name value` kept whole.
    @Test func theGitLabTemplatePassesEachVariableWhole() throws {
        guard let py = toolsPython() else { return }
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try stamp(["sample", "--output", dir + "/base.tar"])
        for f in ["glob-a", "glob-b"] { FileManager.default.createFile(atPath: dir + "/" + f, contents: Data()) }
        let probe = try recordingStamp(in: dir)
        func job(_ vars: [(String, String)]) throws -> RunResult {
            try run(
                [
                    "sh", "-c", "cd \"$0\" && exec \"$@\"", dir, py, fixtures + "/ci_runner.py", "gitlab",
                    repoRoot + "/ci/gitlab/stamp.gitlab-ci.yml", ".stamp-build",
                    JSONValue.encodeString(.object(vars.map { ($0.0, .string($0.1)) })),
                ],
                env: [
                    "PATH": probe.path, "CI_COMMIT_SHA": "89abcdef0123456789abcdef0123456789abcdef",
                    "SOURCE_DATE_EPOCH": "1743811200", "STAMP_CACHE_DIR": testCacheDir,
                ])
        }
        let r = try job([
            ("STAMP_BASE", "oci-archive:base.tar:1.16.0"), ("STAMP_VERSION", "v2.1-canary-7"),
            ("STAMP_OUTPUT", "oci-archive:out.tar"), ("STAMP_TAGS", "v2.1-canary stable,\nrc-1"),
            ("STAMP_ARGS", "--label team=AI team\n--label 'owner=ml platform'"),
        ])
        #expect(r.status == 0, "\(r.err)")
        let argv = try probe.argv()
        #expect(
            Array(argv.drop(while: { $0 != "--tag" })) == [
                "--tag", "v2.1-canary", "--tag", "stable", "--tag", "rc-1", "--label", "team=AI team", "--label",
                "owner=ml platform",
            ])
        let labels = try jsonOf(try stamp(["inspect", "--json", dir + "/out.tar"]).out)["platforms"]?.arrayValue?
            .first?["labels"]
        #expect(labels?["team"]?.stringValue == "AI team")
        let g = try job([
            ("STAMP_BASE", "oci-archive:base.tar:1.16.0"), ("STAMP_VERSION", "v2"),
            ("STAMP_OUTPUT", "oci-archive:out2.tar"), ("STAMP_TAGS", "*"),
        ])
        #expect(g.status != 0)
        let gargv = try probe.argv()
        #expect(gargv.contains("*") && !gargv.contains("glob-a"), "\(gargv)")
    }
}
