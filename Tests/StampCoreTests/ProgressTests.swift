import Foundation
import Testing
import TestSupport
import OCI
@testable import StampCore

/// `--progress auto|tty|plain|quiet` (issue 14, item 7): what a CI log gets.
@Suite struct ProgressTests {
    func lines(_ text: String, _ prefix: String) -> [String] {
        text.split(separator: "\n").map(String.init).filter { $0.hasPrefix(prefix) }
    }

    @Test func plainPrintsALinePerStepAndPerBlob() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try stamp(["sample", "--output", dir + "/base.tar"])
        let r = try stamp([
            "build", "--base", "oci-archive:\(dir)/base.tar:1.16.0", "--version", "v1", "--output", dir + "/out.tar",
            "--progress", "plain", "--json",
        ])
        #expect(r.status == 0, "\(r.err)")
        let steps = lines(r.err, "stamp: ")
        for want in [
            "stamp: reading the base oci-archive:", "stamp: building the stamp layer for linux/amd64",
            "stamp: writing oci-archive:",
        ] {
            #expect(steps.contains { $0.hasPrefix(want) }, "no line \(want) in\n\(r.err)")
            #expect(
                steps.contains { $0.hasPrefix(want) && $0.contains(": done in ") },
                "no end line for \(want) in\n\(r.err)")
        }
        // One line per blob of the output: every blob of the index, with its size.
        let written = Set(
            lines(r.err, "stamp:   wrote sha256:").map { String($0.dropFirst("stamp:   wrote ".count).prefix(71)) })
        let out = try jsonOf(r.out)
        #expect(written.contains(try #require(out["digest"]?.stringValue)))
        #expect(written.contains(try #require(out["layer"]?["digest"]?.stringValue)))
        for p in out["platforms"]?.arrayValue ?? [] {
            #expect(
                written.contains(p["manifest"]?.stringValue ?? "-") && written.contains(p["config"]?.stringValue ?? "-")
            )
        }
        #expect(
            lines(r.err, "stamp:   wrote ").allSatisfy {
                $0.range(of: #" \(\d+ (bytes|kB)|\d+\.\d MB"#, options: .regularExpression) != nil
            })

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
        let push = try stamp([
            "push", dir + "/base.tar", "\(reg.host)/ai/app:v1", "--tls-verify=false", "--progress", "plain",
        ])
        #expect(push.status == 0, "\(push.err)")
        #expect(lines(push.err, "stamp:   pushed sha256:").count >= 5, "\(push.err)")
        #expect(lines(push.err, "stamp: pushing to docker://\(reg.host)/ai/app:v1: done in ").count == 1, "\(push.err)")
        let again = try stamp([
            "push", dir + "/base.tar", "\(reg.host)/ai/other:v1", "--tls-verify=false", "--progress", "plain",
        ])
        #expect(again.status == 0)
        let pull = try stamp([
            "pull", "\(reg.host)/ai/app:v1", "oci-archive:\(dir)/pulled.tar", "--tls-verify=false", "--progress",
            "plain",
        ])
        #expect(pull.status == 0, "\(pull.err)")
        #expect(lines(pull.err, "stamp:   pulled sha256:").count >= 5, "\(pull.err)")
    }
}

/// `--help` that teaches (issue 14, item 11): examples paste as they are at 80 columns, and
/// inspect shows durations as Docker's flags take them.
@Suite struct HelpTests {
    static let commands = [
        [], ["build"], ["inspect"], ["verify"], ["push"], ["pull"], ["assets", "hash"], ["assets", "verify"],
        ["dockerfile"], ["healthcheck"], ["sample"], ["version"], ["canary"], ["canary", "render"],
        ["canary", "weight"], ["canary", "promote"], ["canary", "rollback"], ["canary", "check"], ["canary", "status"],
    ]

    @Test(arguments: HelpTests.commands)
    func examplesFitEightyColumnsUnwrapped(_ command: [String]) throws {
        let help = try stamp(command + ["--help"]).out
        let lines = help.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard let start = lines.firstIndex(where: { $0.hasPrefix("Example") }) else { return }
        for line in lines[(start + 1)...].prefix(while: { !$0.isEmpty }) {
            // A wrapped example line would continue at column 0.
            #expect(line.hasPrefix("  ") && line.count <= 80, "stamp \(command.joined(separator: " ")): \(line)")
        }
    }

    @Test func inspectShowsDurationsAsDockerFlagsTakeThem() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try stamp(["sample", "--output", dir + "/base.tar"])
        try stamp([
            "build", "--base", dir + "/base.tar", "--version", "v1", "--output", dir + "/out.tar",
            "--health-start-period", "90s",
        ])
        let text = try stamp(["inspect", dir + "/out.tar"]).out
        #expect(
            text.contains(
                "healthcheck CMD /app/health-check-enhanced.sh  (every 30s, timeout 10s, start period 1m30s, 3 retries)"
            ), "\(text)")
        #expect(!text.contains("30000000000"))
        // --json keeps the config's own nanoseconds.
        #expect(
            try jsonOf(try stamp(["inspect", "--json", dir + "/out.tar"]).out)["platforms"]?.arrayValue?.first?[
                "healthcheck"]?["Interval"]?.int64Value == 30_000_000_000)
    }
}
