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

/// Runs library code, turning its errors into one line on stderr and a non-zero exit.
func reportingErrors<T>(_ body: () throws -> T) throws -> T {
    do { return try body() } catch let e as ExitCode { throw e } catch let e as CleanExit { throw e } catch {
        printError("stamp: error: " + oneLine(Redact.urls(in: "\(error)")))
        throw ExitCode(ErrorKind.of(error, unknown: .library).exitStatus)
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
