import ArgumentParser
import Hashing
import Layers
import OCI
import StampCore

struct VersionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "version",
        abstract: "Print stamp's version and those of the libraries its output depends on.",
        discussion: """
            The new layer's bytes come from libdeflate: two builds are byte-identical when stamp's and \
            libdeflate's versions match (and the inputs do). libarchive and OpenSSL are as loaded now; \
            libdeflate and ISA-L as stamp was built against (they have no version call, and \
            libdeflate is linked in). commit: the git commit stamp was built from (-dirty when the \
            tree had changes; unknown outside a checkout); no output byte depends on it.
            """
    )

    @Flag(help: "Print one JSON document.")
    var json = false

    func run() throws {
        let rows: [(String, String)] = [
            ("stamp", StampVersion.current), ("commit", buildCommit), ("libdeflate", LibraryVersions.libdeflate),
            ("isa-l", LibraryVersions.isal), ("libarchive", LibraryVersions.libarchive),
            ("openssl", CryptoLibrary.version),
        ]
        if json {
            printOut(
                JSONValue.encodeString(
                    .object(
                        [("schemaVersion", JSONValue(Int64(OutputSchema.version)))] + rows.map { ($0.0, .string($0.1)) }
                    )))
        } else {
            for (k, v) in rows { printOut("\(k.padding(toLength: 11, withPad: " ", startingAt: 0)) \(v)") }
        }
    }
}
