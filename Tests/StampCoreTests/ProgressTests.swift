import Foundation
import Testing
import OCI
@testable import StampCore

/// `--progress auto|tty|plain|quiet` (issue 14, item 7): what a CI log gets.
@Suite struct ProgressTests {
    func lines(_ text: String, _ prefix: String) -> [String] { text.split(separator: "\n").map(String.init).filter { $0.hasPrefix(prefix) } }

    @Test func plainPrintsALinePerStepAndPerBlob() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try stamp(["sample", "--output", dir + "/base.tar"])
        let r = try stamp(["build", "--base", "oci-archive:\(dir)/base.tar:1.16.0", "--version", "v1", "--output", dir + "/out.tar",
                           "--progress", "plain", "--json"])
        #expect(r.status == 0, "\(r.err)")
        let steps = lines(r.err, "stamp: ")
        for want in ["stamp: reading the base oci-archive:", "stamp: building the stamp layer for linux/amd64", "stamp: writing oci-archive:"] {
            #expect(steps.contains { $0.hasPrefix(want) }, "no line \(want) in\n\(r.err)")
            #expect(steps.contains { $0.hasPrefix(want) && $0.contains(": done in ") }, "no end line for \(want) in\n\(r.err)")
        }
        // One line per blob of the output: every blob of the index, with its size.
        let written = Set(lines(r.err, "stamp:   wrote sha256:").map { String($0.dropFirst("stamp:   wrote ".count).prefix(71)) })
        let out = try jsonOf(r.out)
        #expect(written.contains(try #require(out["digest"]?.stringValue)))
        #expect(written.contains(try #require(out["layer"]?["digest"]?.stringValue)))
        for p in out["platforms"]?.arrayValue ?? [] {
            #expect(written.contains(p["manifest"]?.stringValue ?? "-") && written.contains(p["config"]?.stringValue ?? "-"))
        }
        #expect(lines(r.err, "stamp:   wrote ").allSatisfy { $0.range(of: #" \(\d+ (bytes|kB)|\d+\.\d MB"#, options: .regularExpression) != nil })

        // auto, with stderr a file (as in CI), is plain; quiet prints no progress; tty draws
        // no line for a step under a second.
        let auto = try stamp(["verify", dir + "/out.tar"], env: ["STAMP_PROGRESS": ""])
        #expect(auto.status == 0)
        #expect(lines(auto.err, "stamp: verifying ").count == 2, "\(auto.err)")
        #expect(lines(auto.err, "stamp:   checked sha256:").count == 5, "\(auto.err)")
        let quiet = try stamp(["verify", dir + "/out.tar", "--progress", "quiet"])
        #expect(quiet.status == 0 && lines(quiet.err, "stamp:").isEmpty, "\(quiet.err)")
        let tty = try stamp(["verify", dir + "/out.tar", "--progress", "tty"])
        #expect(tty.status == 0 && lines(tty.err, "stamp:").isEmpty && !tty.err.contains("\u{1b}["), "\(tty.err)")
        let fromEnv = try stamp(["verify", dir + "/out.tar"], env: ["STAMP_PROGRESS": "plain"])
        #expect(lines(fromEnv.err, "stamp:   checked sha256:").count == 5, "\(fromEnv.err)")
        let bad = try stamp(["verify", dir + "/out.tar", "--progress", "fancy"])
        #expect(bad.status == 64 && bad.err.contains("fancy"))
    }

    @Test func pushAndPullPrintTheirBlobs() throws {
        let reg = try TestRegistry()
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try stamp(["sample", "--output", dir + "/base.tar"])
        let push = try stamp(["push", dir + "/base.tar", "\(reg.host)/ai/app:v1", "--tls-verify=false", "--progress", "plain"])
        #expect(push.status == 0, "\(push.err)")
        #expect(lines(push.err, "stamp:   pushed sha256:").count >= 5, "\(push.err)")
        #expect(lines(push.err, "stamp: pushing to docker://\(reg.host)/ai/app:v1: done in ").count == 1, "\(push.err)")
        let again = try stamp(["push", dir + "/base.tar", "\(reg.host)/ai/other:v1", "--tls-verify=false", "--progress", "plain"])
        #expect(again.status == 0)
        let pull = try stamp(["pull", "\(reg.host)/ai/app:v1", "oci-archive:\(dir)/pulled.tar", "--tls-verify=false", "--progress", "plain"])
        #expect(pull.status == 0, "\(pull.err)")
        #expect(lines(pull.err, "stamp:   pulled sha256:").count >= 5, "\(pull.err)")
    }
}
