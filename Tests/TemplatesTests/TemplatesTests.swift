import Foundation
import Testing
import TestSupport
@testable import Templates

/// The quoting every rendered value goes through, handed to the languages that read it: dash
/// and bash for shell words, Python's json for JSON literals; the template language's rules;
/// the health-check script as shellcheck sees it.
@Suite struct TemplatesTests {
    static let hostile = [
        "", "plain", "it's", "''", #"a" ; rm -rf / $(id) `id` ${HOME} \ back"#, "tab\there", "new\nline",
        "é ✓ \u{1F600}", "\\", "$", "-n", "--", "\u{01}\u{1f}",
    ]

    @Test(arguments: ["sh", "bash"])
    func aShellWordIsExactlyTheValue(_ shell: String) throws {
        for value in Self.hostile {
            let r = try runTool([shell, "-c", "printf '%s' " + Quote.shell(value)])
            #expect(r.status == 0 && r.out == value, "\(shell): \(String(reflecting: value)) came back \(r.out)")
        }
    }

    @Test func aJSONLiteralIsExactlyTheValue() throws {
        let literals = "[" + Self.hostile.map(Quote.json).joined(separator: ",") + "]"
        let r = try runTool([
            "python3", "-c",
            "import json,sys; v=json.loads(sys.argv[1]); sys.stdout.write('\\u0000'.join(v))", literals,
        ])
        #expect(r.status == 0, "\(r.err)")
        #expect(r.out.components(separatedBy: "\u{0}") == Self.hostile)
    }

    @Test func dockerfileValuesRefuseWhatTheyCannotCarry() throws {
        #expect(try Quote.dockerfile(#"say "hi" $USER \ x"#) == #""say \"hi\" \$USER \\ x""#)
        #expect(throws: TemplateError.self) { try Quote.dockerfile("two\nlines") }
        #expect(try Quote.dockerfileArray(["/app/a b", "x\"y"]) == #"["/app/a b", "x\"y"]"#)
        #expect(throws: TemplateError.self) { try Quote.dockerfileArray(["/app/$HOME"]) }
    }

    @Test func sectionsAndErrors() throws {
        // A section tag alone on its line takes its line with it.
        let t = try Template(
            "A\n{{#items}}\n[{{name}}]\n{{/items}}\n{{^items}}\nnone\n{{/items}}\n{{! dropped }}\n{{#on}}!{{/on}}.\n",
            name: "t")
        let two: [[String: TemplateValue]] = [["name": .text("x")], ["name": .text("y")]]
        #expect(try t.render(["items": .list(two), "on": .flag(true)]) == "A\n[x]\n[y]\n!.\n")
        #expect(try t.render(["items": .list([]), "on": .flag(false)]) == "A\nnone\n.\n")
        #expect { try t.render(["items": .list([])]) } throws: { "\($0)".contains("on") }
        #expect { try Template("x\n{{#open}}never closed\n", name: "bad") } throws: { "\($0)".contains("open") }
        #expect { try Template("FROM {{base_imag}}\n", name: "t").render(["base_image": .text("b")]) } throws: {
            "\($0)".contains("unknown name {{base_imag}}")
        }
    }

    /// The script as rendered, with hostile settings, is clean to shellcheck.
    @Test func theHealthCheckScriptIsCleanShell() throws {
        let dir = try tempDir()
        for (i, path) in ["/api/ping", "/it's ok"].enumerated() {
            let script = HealthCheckScript(
                versionJSON: "/app/version.json", envFile: i == 0 ? "/app/server/.env" : nil, port: 3001 + i,
                path: path, timeout: 5, serviceID: i == 0 ? nil : "svc 'x'", stampVersion: "test"
            ).render()
            #expect(script.hasPrefix("#!/bin/sh\n"))
            #expect(script.contains("ping_path=" + Quote.shell(path)))
            try Data(script.utf8).write(to: URL(fileURLWithPath: dir + "/h\(i).sh"))
            let r = try runTool(["shellcheck", "-s", "sh", dir + "/h\(i).sh"])
            #expect(r.status == 0, "\(r.out)")
        }
    }
}
