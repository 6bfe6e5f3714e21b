import ArgumentParser
import Failures
import Canary
import Foundation
import IO
import StampCore
import OCI
import Layers

public struct StampCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "stamp",
        abstract: "Turn an official container image into a release candidate that carries its own identity.",
        discussion: """
            Reads an image (OCI layout, oci-archive, docker save tar), adds one reproducible layer with \
            /app/version.txt and /app/version.json, patches labels, annotations, env and history without \
            losing any key it does not own, and writes an OCI image archive that skopeo, umoci, podman, \
            registries and `docker load` all read. No Docker daemon is involved.

            Image references use the skopeo transport syntax: oci:DIR[:REF], oci-archive:TAR[:REF], \
            docker-archive:TAR, docker://HOST[:PORT]/REPO[:TAG|@DIGEST] (a registry), or a plain path \
            whose kind is detected.

            Exit status: 0 done; 1 `verify` or `assets verify` found something; 2 bad input or a \
            failure (one line on stderr says which); 3 `--locked` and the base moved; 64 a usage \
            error in the command line; 70 an internal error.

            Example:
              stamp sample --output base.tar
              stamp build --base oci-archive:base.tar --version v2.1-canary \\
                          --output out.tar --tag v2.1-canary
              stamp verify out.tar
            """,
        version: StampVersion.current,
        subcommands: [
            BuildCommand.self, InspectCommand.self, VerifyCommand.self, PushCommand.self, PullCommand.self,
            AssetsCommand.self, DockerfileCommand.self, HealthcheckCommand.self, SampleCommand.self,
            VersionCommand.self, CanaryCommand.self,
        ]
    )

    public init() {}
}

/// Runs library code, turning its errors into one line on stderr and a non-zero exit; with
/// `json`, also an error document on stdout (`schemas/error.schema.json`), so a pipeline that
/// reads stdout is never left with nothing.
func reportingErrors<T>(json: Bool = false, _ body: () throws -> T) throws -> T {
    do { return try body() } catch let e as ExitCode { throw e } catch let e as CleanExit { throw e } catch {
        let line = oneLine(Redact.urls(in: "\(error)"))
        let status = ErrorKind.of(error, unknown: .library).exitStatus
        printError("stamp: error: " + line)
        if json {
            printOut(
                JSONValue.encodeString(
                    .object([
                        ("error", .string(line)), ("exitStatus", JSONValue(Int64(status))), ("ok", .bool(false)),
                        ("schemaVersion", JSONValue(Int64(OutputSchema.version))),
                    ])))
        }
        throw ExitCode(status)
    }
}

/// An error as one line a terminal or a CI log shows as it is: control characters (a newline,
/// NUL, ESC that would start a terminal sequence or fake a log line) escaped, and at most 2,000
/// characters (what an input quoted back can hold is unbounded).
func oneLine(_ text: String, max: Int = 2000) -> String {
    var out = String.UnicodeScalarView()
    var count = 0
    for u in text.unicodeScalars {
        if count >= max {
            out.append(contentsOf: "… (\(text.unicodeScalars.count - count) more characters)".unicodeScalars)
            break
        }
        count += 1
        if u.value < 0x20 || u.value == 0x7f || (0x80..<0xa0).contains(u.value) {
            let escaped =
                u == "\n" ? "\\n" : u == "\r" ? "\\r" : u == "\t" ? "\\t" : "\\u{\(String(u.value, radix: 16))}"
            out.append(contentsOf: escaped.unicodeScalars)
        } else {
            out.append(u)
        }
    }
    return String(out)
}

func printError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}

func printOut(_ text: String) {
    FileHandle.standardOutput.write(Data((text + "\n").utf8))
}

func imageReference(_ s: String) throws -> ImageReference {
    do { return try ImageReference.parse(s, exists: { Path.exists($0) }) } catch {
        throw StampError.usage("\(error)")
    }
}

extension StampCommand {
    /// Runs stamp on the process's command line, after two checks ArgumentParser does not make:
    /// a command line that cannot be read (Swift reads it from `/proc/self/cmdline`, absent in a
    /// bare chroot) is an error, not the general help with exit 0; and a word in a command's
    /// place that names no command is a usage error with the nearest one, never swallowed by a
    /// root flag (`stamp biuld --version v1` printed stamp's version and exited 0).
    public static func mainChecked() -> Never {
        let arguments = CommandLine.arguments
        guard !arguments.isEmpty else {
            printError(
                "stamp: error: the command line cannot be read (Swift reads it from /proc/self/cmdline: is /proc "
                    + "mounted?); nothing was done")
            Glibc.exit(2)
        }
        if let problem = unknownCommand(Array(arguments.dropFirst())) ?? foreignFlag(Array(arguments.dropFirst())) {
            printError("stamp: error: " + oneLine(problem))
            Glibc.exit(ExitCode.validationFailure.rawValue)
        }
        main()
        Glibc.exit(0)
    }

    /// Why the words in command places do not name a command (nil when they do): followed down
    /// from the root as long as the command there has subcommands.
    static func unknownCommand(_ args: [String]) -> String? {
        var command: ParsableCommand.Type = StampCommand.self
        var path = "stamp"
        for word in args {
            let subs = command.configuration.subcommands
            guard !subs.isEmpty, !word.hasPrefix("-") else { return nil }
            if word == "help" { return nil }
            if let next = subs.first(where: { $0._commandName == word }) {
                command = next
                path += " " + word
                continue
            }
            let names = subs.map { $0._commandName }
            let near = names.map { ($0, editDistance($0, word)) }.filter {
                $0.1 <= max(word.count >= 4 ? 2 : 1, word.count / 3)
            }
            .min { $0.1 < $1.1 }
            let hint = near.map { "did you mean '\(path) \($0.0)'? " } ?? ""
            return "'\(word)' is not a command of \(path) (\(names.joined(separator: ", "))); \(hint)"
                + "'\(path) --help' says more"
        }
        return nil
    }

    /// Flags of other tools that stamp spells its own way, with the flag to use (nil when none
    /// is given): ArgumentParser would only say "Unknown option".
    static func foreignFlag(_ args: [String]) -> String? {
        let ours: [String: String] = [
            "--insecure": "--tls-verify=false (crane's --insecure; skopeo's and podman's spelling)",
            "--insecure-registry": "--tls-verify=false (skopeo's and podman's spelling)",
            "--dest-tls-verify": "--tls-verify (one flag for every registry stamp talks to)",
            "--src-tls-verify": "--tls-verify (one flag for every registry stamp talks to)",
            "--push": "a registry --output (docker://HOST/REPO:TAG), or `stamp push` after a build",
            "--load": "--output docker-archive:FILE, then `docker load -i FILE`",
        ]
        for a in args {
            if a == "--" { return nil }
            let flag = a.split(separator: "=", maxSplits: 1).first.map(String.init) ?? a
            if let use = ours[flag] { return "\(flag) is not stamp's: use \(use)" }
        }
        return nil
    }

    /// Levenshtein distance over characters (short words: a command name and a typo of it).
    static func editDistance(_ a: String, _ b: String) -> Int {
        let x = Array(a), y = Array(b)
        guard !x.isEmpty, !y.isEmpty else { return max(x.count, y.count) }
        var row = Array(0...y.count)
        for i in 1...x.count {
            var previous = row[0]
            row[0] = i
            for j in 1...y.count {
                let here = row[j]
                row[j] = x[i - 1] == y[j - 1] ? previous : 1 + min(previous, row[j], row[j - 1])
                previous = here
            }
        }
        return row[y.count]
    }
}
