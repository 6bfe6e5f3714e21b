import ArgumentParser
import Assets
import Foundation
import OCI
import StampCore

struct AssetsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "assets",
        abstract: "Content-hashed frontend assets: hash a folder, verify one.",
        subcommands: [AssetsHashCommand.self, AssetsVerifyCommand.self]
    )
}

struct AssetsHashCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hash",
        abstract: "Copy a frontend build with content-hashed names and every reference rewritten.",
        discussion: """
        index.css becomes index.1a2b3c4d.css (the first hex digits of SHA-256 of its final bytes). \
        HTML, the web app manifest, robots.txt, favicon.ico, service workers and version.json keep \
        their names and are only rewritten; --keep adds globs. A file that references another \
        changes name when that one does; files that import each other in a cycle are hashed as a \
        group. The manifest maps each original path to its new path, size, sha256 and SRI \
        integrity. The source folder is never modified; running hash on its own output changes \
        nothing.

        Example:
          stamp assets hash dist --output dist-hashed --keep 'embed/**'
          stamp assets verify dist-hashed
        """
    )

    @Argument(help: "The frontend build folder.")
    var source: String

    @Option(help: "The new folder to write (must not exist, or be empty).")
    var output: String

    @OptionGroup var naming: AssetNamingOptions

    @Flag(help: "Add integrity attributes to <script> and <link> tags in HTML.")
    var sri = false

    @Flag(help: "Print the original → new names as JSON on stdout.")
    var json = false

    func run() throws {
        let result = try reportingErrors { () throws -> AssetResult in
            var o = try naming.options()
            o.sri = sri
            let files = try AssetTree.read(source)
            // Files are written as they are hashed, on a second core.
            let writer = try AssetTree.Writer(to: output)
            o.ready = { writer.add($0) }
            let r = try AssetHasher.hash(files, options: o)
            try writer.finish()
            return r
        }
        if json {
            printOut(JSONValue.encodeString(.strings(result.renames)))
        } else {
            let renamed = result.renames.filter { $0.key != $0.value }.count
            printError("\(result.files.count) files written to \(output), \(renamed) renamed; manifest \(naming.manifest)")
        }
    }
}

struct AssetsVerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check that hashed names match their bytes, references resolve and the manifest agrees.",
        discussion: """
        Recomputes every name from the folder alone. One line per finding, naming the file; \
        exit 0 when clean, 1 with findings.

        Example:
          stamp assets verify dist-hashed
        """
    )

    @Argument(help: "The hashed folder.")
    var folder: String

    @OptionGroup var naming: AssetNamingOptions

    func run() throws {
        let findings = try reportingErrors { () throws -> [String] in
            AssetVerifier.verify(try AssetTree.read(folder), options: try naming.options())
        }
        for f in findings { printOut(f) }
        if findings.isEmpty { printError("ok: \(folder)") } else { printError("\(findings.count) finding(s) in \(folder)"); throw ExitCode(1) }
    }
}

/// How hashed names are made; `hash` and `verify` must be given the same.
struct AssetNamingOptions: ParsableArguments {
    @Option(help: "Name of the manifest at the root of the folder.")
    var manifest = "asset-manifest.json"

    @Option(help: ArgumentHelp("Files that keep their names (glob, repeatable; ** spans folders).", valueName: "glob"))
    var keep: [String] = []

    @Option(help: "Hex digits of the hash in names (4-64).")
    var length = 8

    func options() throws -> AssetOptions {
        guard (4...64).contains(length) else { throw StampError.usage("--length: between 4 and 64") }
        var o = AssetOptions()
        o.length = length
        o.keep = keep.map(Glob.init)
        o.manifestName = manifest
        return o
    }
}
