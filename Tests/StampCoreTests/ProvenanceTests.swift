import Foundation
import Testing
import TestSupport
import OCI
@testable import StampCore

/// Honest provenance (issue 14, item 10): a re-stamp replaces every identity key stamp owns, the
/// source comes from the checkout when no CI variable names it, and the base's name is never
/// guessed from a tag.
@Suite struct ProvenanceTests {
    /// No CI variables, whatever the machine running the tests has.
    let noCI = [
        "GITHUB_SHA": "", "CI_COMMIT_SHA": "", "GITHUB_SERVER_URL": "", "GITHUB_REPOSITORY": "", "CI_PROJECT_URL": "",
        "SOURCE_DATE_EPOCH": "1743811200",
    ]

    /// stamp run in `cwd`.
    func stampIn(_ cwd: String, _ args: [String], env: [String: String] = [:]) throws -> RunResult {
        try run(
            ["sh", "-c", "cd \"$0\" && exec \"$@\"", cwd, stampBin] + args,
            env: noCI.merging(["STAMP_CACHE_DIR": testCacheDir]) { $1 }.merging(env) { $1 })
    }

    func firstPlatform(_ image: String) throws -> JSONValue {
        try #require(try jsonOf(try stamp(["inspect", "--json", image]).out)["platforms"]?.arrayValue?.first)
    }

    @Test func aRestampWithoutARevisionRemovesThePreviousOne() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try stamp(["sample", "--output", dir + "/base.tar"])
        let first = try stampIn(
            dir,
            [
                "build", "--base", "oci-archive:base.tar:1.16.0", "--version", "v1", "--revision", "abc123",
                "--source", "https://git.corp.example/ai/app", "--output", "one.tar",
            ])
        #expect(first.status == 0, "\(first.err)")
        let again = try stampIn(dir, ["build", "--base", "one.tar", "--version", "v2", "--output", "two.tar"])
        #expect(again.status == 0, "\(again.err)")
        #expect(again.err.contains("warning: the base's \(AnnotationKey.revision) (abc123) is removed"), "\(again.err)")
        #expect(
            again.err.contains(
                "warning: the base's \(AnnotationKey.source) (https://git.corp.example/ai/app) is removed"),
            "\(again.err)")
        let p = try firstPlatform(dir + "/two.tar")
        #expect(p["labels"]?[AnnotationKey.revision] == nil && p["labels"]?[AnnotationKey.source] == nil)
        #expect(p["labels"]?[AnnotationKey.version]?.stringValue == "v2")
        #expect(p["annotations"]?[AnnotationKey.revision] == nil)
        #expect(!(p["env"]?.arrayValue ?? []).contains { $0.stringValue?.hasPrefix("IMAGE_REVISION=") == true })
        // And stamp's own verify agrees with itself (it found 8 findings before).
        let v = try stamp(["verify", dir + "/two.tar"])
        #expect(v.status == 0, "\(v.out)")
    }

    @Test func aCheckoutWithoutCIVariablesNamesItsOwnRemote() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try stamp(["sample", "--output", dir + "/base.tar"])
        let git = ["git", "-C", dir, "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
        for args in [
            ["init", "-q"], ["remote", "add", "origin", "git@git.corp.example:ai/anything-llm.git"],
            ["commit", "-q", "--allow-empty", "-m", "x"],
        ] {
            #expect(try run(git + args).status == 0)
        }
        let head = try run(["git", "-C", dir, "rev-parse", "HEAD"]).out.trimmingCharacters(in: .whitespacesAndNewlines)
        let r = try stampIn(
            dir, ["build", "--base", "oci-archive:base.tar:1.16.0", "--version", "v1", "--output", "out.tar"])
        #expect(r.status == 0, "\(r.err)")
        let labels = try firstPlatform(dir + "/out.tar")["labels"]
        #expect(labels?[AnnotationKey.source]?.stringValue == "https://git.corp.example/ai/anything-llm")
        #expect(labels?[AnnotationKey.revision]?.stringValue == head)
    }

    @Test(
        arguments: [
            ("git@github.example:ai/app.git", "https://github.example/ai/app"),
            ("ssh://git@git.corp.example:2222/ai/app.git", "https://git.corp.example/ai/app"),
            ("https://ci-token:secret@gitlab.corp.example/ai/app.git", "https://gitlab.corp.example/ai/app"),
            ("https://gitlab.corp.example/group/sub/app/", "https://gitlab.corp.example/group/sub/app"),
            ("/srv/git/app.git", nil), ("../app", nil), ("file:///srv/git/app.git", nil), ("https://host-only", nil),
        ] as [(String, String?)])
    func remotesBecomeWebAddresses(_ remote: String, _ want: String?) {
        #expect(StampPlan.webAddress(remote) == want)
    }

    @Test func theBaseNameIsTheBasesOwnOrNone() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try stamp(["sample", "--output", dir + "/base.tar"])
        // A bare tag names no repository: no base.name.
        let bare = try stampIn(
            dir, ["build", "--base", "oci-archive:base.tar:1.16.0", "--version", "v1", "--output", "a.tar"])
        #expect(bare.status == 0)
        #expect(try firstPlatform(dir + "/a.tar")["labels"]?[AnnotationKey.baseName] == nil)
        #expect(try jsonOf(try stamp(["inspect", "--json", dir + "/a.tar"]).out)["stamp"]?["base"]?["name"] == nil)
        // --base-name records it.
        let named = try stampIn(
            dir,
            [
                "build", "--base", "oci-archive:base.tar:1.16.0", "--version", "v1", "--output", "b.tar",
                "--base-name", "registry.corp.example/mirror/anything-llm:1.16.0",
            ])
        #expect(named.status == 0)
        #expect(
            try firstPlatform(dir + "/b.tar")["labels"]?[AnnotationKey.baseName]?.stringValue
                == "registry.corp.example/mirror/anything-llm:1.16.0")
        // A docker-archive names itself fully (RepoTags).
        let save = try stampIn(
            dir,
            [
                "build", "--base", "oci-archive:base.tar:1.16.0", "--version", "v1", "--platform", "linux/amd64",
                "--output", "docker-archive:saved.tar", "--tag", "registry.corp.example/ai/app:v1",
            ])
        #expect(save.status == 0, "\(save.err)")
        let fromSave = try stampIn(
            dir, ["build", "--base", "docker-archive:saved.tar", "--version", "v2", "--output", "c.tar"])
        #expect(fromSave.status == 0, "\(fromSave.err)")
        #expect(
            try firstPlatform(dir + "/c.tar")["labels"]?[AnnotationKey.baseName]?.stringValue
                == "registry.corp.example/ai/app:v1")
    }
}
