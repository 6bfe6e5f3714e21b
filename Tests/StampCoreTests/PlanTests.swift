import Foundation
import Testing
import TestSupport
import OCI
@testable import StampCore

@Suite struct PlanTests {
    func plan(_ s: StampSettings, env: [String: String] = [:], git: String? = nil) throws -> StampPlan {
        try StampPlan.resolve(s, environment: env, gitRevision: { git }, now: { 1_800_000_000 })
    }

    var minimal: StampSettings {
        var s = StampSettings()
        s.base = "oci-archive:b.tar"
        s.output = "o.tar"
        s.version = "v1"
        return s
    }

    @Test func revisionDefaultsInOrder() throws {
        #expect(try plan(minimal, env: ["GITHUB_SHA": "gh", "CI_COMMIT_SHA": "gl"], git: "git").revision == "gh")
        #expect(try plan(minimal, env: ["CI_COMMIT_SHA": "gl"], git: "git").revision == "gl")
        #expect(try plan(minimal, git: "git").revision == "git")
        #expect(try plan(minimal).revision == nil)
        var s = minimal
        s.revision = "flag"
        #expect(try plan(s, env: ["GITHUB_SHA": "gh"]).revision == "flag")
    }

    @Test func createdFromFlagThenSourceDateEpochThenNow() throws {
        var s = minimal
        #expect(try plan(s).created.epoch == 1_800_000_000)
        #expect(try plan(s, env: ["SOURCE_DATE_EPOCH": "1743811200"]).created.rfc3339 == "2025-04-05T00:00:00Z")
        s.created = "2025-04-05T12:30:00+02:00"
        #expect(try plan(s, env: ["SOURCE_DATE_EPOCH": "1"]).created.rfc3339 == "2025-04-05T10:30:00Z")
    }

    @Test func sourceFromCI() throws {
        #expect(
            try plan(minimal, env: ["GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "acme/ai"]).source
                == "https://github.com/acme/ai")
        #expect(
            try plan(minimal, env: ["CI_PROJECT_URL": "https://gitlab.example/acme/ai"]).source
                == "https://gitlab.example/acme/ai")
    }

    @Test func plainOutputPathIsAnArchive() throws {
        #expect(try plan(minimal).output == .ociArchive(path: "o.tar", ref: nil))
    }

    @Test func genericProfileHasNoFilesUnlessAsked() throws {
        var s = minimal
        s.profile = "generic"
        let p = try plan(s)
        #expect(p.versionFile == nil && p.versionJSON == nil)
        s.versionFile = "/srv/VERSION"
        #expect(try plan(s).versionFile == "/srv/VERSION")
        var a = minimal
        a.versionJSON = ""
        #expect { try plan(a) } throws: { "\($0)".contains("the health check reads version.json") }
        a.noHealthcheck = true
        #expect(try plan(a).versionJSON == nil)
        #expect(try plan(a).publicVersionJSON == nil)
    }

    @Test func configFileWithFlagsOnTop() throws {
        let dir = try tempDir()
        try FileManager.default.createDirectory(atPath: dir + "/extra", withIntermediateDirectories: true)
        try Data("x".utf8).write(to: URL(fileURLWithPath: dir + "/extra/motd"))
        let yaml = """
            base: oci-archive:anything-llm.tar:1.16.0
            output: oci-archive:out.tar
            version: v-from-file
            revision: file-rev
            label: {team: ai, tier: canary}
            annotation: [org.example.ticket=REL-42]
            env: {FEATURE_X: 1}
            add: ["extra/motd:/etc/motd"]
            platform: linux/amd64
            compression: zstd
            version-file: /srv/VERSION
            """
        try Data(yaml.utf8).write(to: URL(fileURLWithPath: dir + "/stamp.yaml"))
        let file = try StampSettings.load(file: dir + "/stamp.yaml")
        var flags = StampSettings()
        flags.version = "v-from-flag"
        flags.labels = ["tier=stable"]
        let p = try plan(flags.merged(over: file))
        #expect(p.version == "v-from-flag")
        #expect(p.revision == "file-rev")
        #expect(p.labels.map { "\($0.0)=\($0.1)" } == ["team=ai", "tier=stable"])
        #expect(p.annotations.first?.1 == "REL-42")
        #expect(p.env.first.map { "\($0.0)=\($0.1)" } == "FEATURE_X=1")
        #expect(p.adds == [.init(source: dir + "/extra/motd", destination: "/etc/motd")])
        #expect(p.platforms.map(\.description) == ["linux/amd64"])
        #expect(p.compression == .zstd)
        #expect(p.versionFile == "/srv/VERSION")
        #expect(p.base == .ociArchive(path: "anything-llm.tar", ref: "1.16.0"))
    }

    @Test func configFileErrorsNameTheKey() throws {
        let dir = try tempDir()
        try Data("verison: v1\n".utf8).write(to: URL(fileURLWithPath: dir + "/s.yaml"))
        #expect { try StampSettings.load(file: dir + "/s.yaml") } throws: {
            "\($0)".contains("unknown key \"verison\"")
        }
        try Data("label: [\n".utf8).write(to: URL(fileURLWithPath: dir + "/bad.yaml"))
        #expect { try StampSettings.load(file: dir + "/bad.yaml") } throws: { "\($0)".contains("not valid YAML") }
    }

    /// `${VAR}` and `${VAR:-default}` in stamp.yaml come from the environment; an unset one with
    /// no default is an error naming it, never an empty version.
    @Test func configValuesExpandVariables() throws {
        let dir = try tempDir()
        try
            ("version: ${VERSION}\nrevision: ${GITHUB_SHA:-unknown}\nlabel: {built-by: \"ci ${RUNNER:-local}\", price: "
            + "$5}\n")
            .write(toFile: dir + "/s.yaml", atomically: true, encoding: .utf8)
        let s = try StampSettings.load(file: dir + "/s.yaml", environment: ["VERSION": "v2.1-canary", "RUNNER": "gha"])
        #expect(s.version == "v2.1-canary")
        #expect(s.revision == "unknown")
        #expect(s.labels.sorted() == ["built-by=ci gha", "price=$5"])
        #expect { try StampSettings.load(file: dir + "/s.yaml", environment: [:]) } throws: {
            "\($0)".contains("\"version\": ${VERSION} is not set")
        }
        try "version: ${VER\n".write(toFile: dir + "/bad.yaml", atomically: true, encoding: .utf8)
        #expect { try StampSettings.load(file: dir + "/bad.yaml", environment: [:]) } throws: {
            "\($0)".contains("without a closing")
        }
        // Through the command line too.
        let base = try sampleBase(dir)
        try "base: \(base)\nversion: ${VERSION}\noutput: \(dir)/o.tar\n".write(
            toFile: dir + "/b.yaml", atomically: true, encoding: .utf8)
        let r = try stamp(["build", "--config", dir + "/b.yaml", "--json"], env: ["VERSION": "v3-from-env"])
        #expect(r.status == 0, "\(r.err)")
        let version = try jsonOf(r.out)["version"]?.stringValue
        #expect(version == "v3-from-env")
    }

    /// Scalars keep the text they are written with (a YAML number is not reformatted: `1.10` is
    /// not `1.1`, `0123` not 83), lists come from a list, a mapping or one value, and every key
    /// of the file is a flag of `stamp build` (the keys come from the settings' fields).
    @Test func settingsKeepTheirTextAndEveryKeyIsAFlag() throws {
        let dir = try tempDir()
        try
            ("version: 1.10\nrevision: 0123\nhealth-port: 3001\nno-cache: yes\nlabel: a=1\ntags: [v1, latest]\nenv: "
            + "{B: 2, A: 1}\n")
            .write(toFile: dir + "/s.yaml", atomically: true, encoding: .utf8)
        let s = try StampSettings.load(file: dir + "/s.yaml", environment: [:])
        #expect(s.version == "1.10" && s.revision == "0123")
        #expect(s.healthPort == 3001 && s.noCache == true)
        #expect(s.labels == ["a=1"] && s.tags == ["v1", "latest"] && s.env == ["A=1", "B=2"])
        try "health-port: web\n".write(toFile: dir + "/p.yaml", atomically: true, encoding: .utf8)
        #expect { try StampSettings.load(file: dir + "/p.yaml") } throws: {
            "\($0)".contains("\"health-port\" must be a whole number")
        }
        try "no-cache: maybe\n".write(toFile: dir + "/b.yaml", atomically: true, encoding: .utf8)
        #expect { try StampSettings.load(file: dir + "/b.yaml") } throws: {
            "\($0)".contains("\"no-cache\" must be true or false")
        }
        try "version: [a, b]\n".write(toFile: dir + "/v.yaml", atomically: true, encoding: .utf8)
        #expect { try StampSettings.load(file: dir + "/v.yaml") } throws: {
            "\($0)".contains("\"version\" must be a single value")
        }

        let help = try stamp(["build", "--help"]).out
        for k in StampSettings.keys {
            #expect(
                help.contains("--\(k) ") || help.contains("--\(k)\n") || help.contains("--\(k) <"), "\(k) is no flag")
        }
        // Flags over a file: scalars replace, lists add up, tags and platforms replace.
        var flags = StampSettings()
        flags.version = "v2"
        flags.labels = ["b=2"]
        flags.tags = ["canary"]
        let m = flags.merged(over: s)
        #expect(m.version == "v2" && m.revision == "0123" && m.labels == ["a=1", "b=2"] && m.tags == ["canary"])
        #expect(m.healthPort == 3001 && m.env == ["A=1", "B=2"])
    }

    @Test func everyFlagHasAConfigKey() throws {
        let help = try stamp(["build", "--help"]).out
        let flags = Set(
            help.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "," }).filter { $0.hasPrefix("--") }
                .map { String($0.dropFirst(2).prefix { $0.isLetter || $0 == "-" }) }.filter { !$0.isEmpty })
        // What the run hands on (like --json) is for the command line, not the settings file.
        let cliOnly: Set<String> = [
            "config", "json", "quiet", "help", "version", "creds", "metadata-file", "digestfile", "progress",
        ]
        for f in flags.subtracting(cliOnly) {
            #expect(StampSettings.keys.contains(f), "--\(f) has no key in stamp.yaml")
        }
        #expect(flags.contains("base") && flags.contains("compression-level"))
    }

    @Test(arguments: [
        (Int64(0), "1970-01-01T00:00:00Z"), (1_743_811_200, "2025-04-05T00:00:00Z"),
        (951_782_400, "2000-02-29T00:00:00Z"),
        (4_102_444_799, "2099-12-31T23:59:59Z"), (-1, "1969-12-31T23:59:59Z"),
    ])
    func timestamps(_ epoch: Int64, _ text: String) {
        #expect(Timestamp(epoch: epoch).rfc3339 == text)
        #expect(Timestamp.parse(text)?.epoch == epoch)
    }
}
