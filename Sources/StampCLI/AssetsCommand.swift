import ArgumentParser
import Assets
import Foundation
import IO
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
        abstract: "Copy a frontend build with content-hashed names, every reference rewritten, nothing broken.",
        discussion: """
            index.css becomes index.1a2b3c4d.css (the first hex digits of SHA-256 of its final bytes), \
            and every reference to it is rewritten. A file is renamed only when stamp has proven that \
            every use of its name is such a reference: if its name also appears where stamp cannot \
            rewrite it (a template literal, a string a script compares, a webpack chunk map, a server \
            template, a --rewrite file), or a script may build it at run time (`lunr.${lang}.min.js`), \
            or nothing in the folder refers to it (a server asks for it by name), it keeps its name. \
            Pages, favicons and touch icons, sitemaps, feeds, robots.txt, llms.txt, \
            .well-known/, web app manifests, service workers, server templates and package.json keep \
            theirs; --keep adds globs. A text file over 32 MiB is copied as it is (not read whole: \
            memory stays flat), and every file it names keeps its name. \
            Files the bundler already named after their content \
            (index-BjL3nRWm.js, main.3f9a1c0b.js) keep their names unless their bytes change. \
            A file that references another changes name when that one does; files that import each \
            other in a cycle are hashed as a group.

            The manifest (stamp-assets.json at the root) maps each original path to its new path, \
            size, sha256, SRI integrity and cache policy: "immutable" for a content-hashed name (by \
            stamp or the bundler), "revalidate" with the reason for a file that keeps its name. \
            --explain prints why each file kept its name. The source folder is never modified; \
            running hash on its own output changes nothing.

            Example:
              stamp assets hash dist --output dist-hashed --keep 'embed/**' --explain
              stamp assets hash public --output out --rewrite srv/Meta.js:srv-out/Meta.js
              stamp assets verify dist-hashed
            """
    )

    @Argument(help: "The frontend build folder.")
    var source: String

    @Option(help: "The new folder to write (must not exist, or be empty).")
    var output: String

    @OptionGroup var naming: AssetNamingOptions

    @Option(
        help: ArgumentHelp(
            "A server file outside the folder that writes root-absolute URLs of it (\"/index.js\"): searched like the "
                + "folder's files, and written to DEST with its references rewritten (repeatable).",
            valueName: "src:dest"))
    var rewrite: [String] = []

    @Flag(help: "Add integrity attributes to <script> and <link> tags in HTML.")
    var sri = false

    @Flag(help: "List the files that keep their names, and why (on stderr).")
    var explain = false

    @Flag(help: "Print the renames and the files kept (with the reason) as JSON on stdout.")
    var json = false

    func run() throws {
        let (result, rewrites) = try reportingErrors(json: json) { () throws -> (AssetResult, [(String, String)]) in
            try refuseTransport(output, "--output", what: "the hashed folder")
            var o = try naming.options(output: output)
            o.sri = sri
            var extras: [AssetFile] = []
            var rewrites: [(String, String)] = []
            for r in rewrite {
                guard let colon = r.lastIndex(of: ":"), !r[..<colon].isEmpty, !r[r.index(after: colon)...].isEmpty
                else {
                    throw StampError.usage(
                        "--rewrite \(r): expected SRC:DEST (the rewritten copy goes to DEST; SRC is not modified)")
                }
                let src = String(r[..<colon]), dest = String(r[r.index(after: colon)...])
                guard !FileManager.default.fileExists(atPath: dest) else {
                    throw StampError.usage("--rewrite: \(dest) exists")
                }
                extras.append(AssetFile(path: src, bytes: try AssetTree.readFile(src)))
                rewrites.append((src, dest))
            }
            // Scripts and styles stay on disk until hashed; renamed ones go to an unlinked spool.
            let files = try AssetTree.read(source, lazyText: true)
            o.spool = try AssetSpool()
            // Files are written as they are hashed, on a second core.
            let writer = try AssetTree.Writer(to: output)
            o.ready = { writer.add($0) }
            let r = try AssetHasher.hash(files, extras: extras, options: o)
            try writer.finish()
            for (e, (_, dest)) in zip(r.extras, rewrites) {
                do { try Data(e.bytes).write(to: URL(fileURLWithPath: dest), options: .atomic) } catch {
                    throw StampError.badInput("--rewrite: \(dest): \(error.localizedDescription)")
                }
            }
            return (r, rewrites)
        }
        if explain {
            for (p, why) in result.kept.sorted(by: { utf8Less($0.key, $1.key) }) { printError("kept \(p): \(why)") }
        }
        let renamed = result.renames.filter { $0.key != $0.value }
        if json {
            printOut(
                JSONValue.encodeString(
                    .object([
                        ("schemaVersion", JSONValue(Int64(OutputSchema.version))),
                        ("kept", .strings(result.kept)),
                        ("manifest", .string(naming.manifestPath(output: output))),
                        ("renamed", .strings(renamed)),
                        ("rewritten", .strings(Dictionary(uniqueKeysWithValues: rewrites))),
                    ])))
        } else {
            let bundler = result.kept.values.filter { $0.hasPrefix("named by its bundler") }.count
            printError(
                "\(result.files.count) files written to \(output): \(renamed.count) renamed, \(bundler) already named by "
                    + "their bundler, "
                    + "\(result.kept.count - bundler) kept\(explain ? "" : " (--explain says why)"); manifest "
                    + "\(naming.manifestPath(output: output))"
            )
        }
    }
}

struct AssetsVerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check that hashed names match their bytes, references resolve and the manifest agrees.",
        discussion: """
            Reads the folder and its manifest (stamp-assets.json): every file listed with its size, \
            sha256 and integrity; every name stamp gave recomputed from the bytes; every URL the \
            browser fetches (HTML attributes, CSS url(), imports, new URL(…, import.meta.url), \
            workers) resolving to a file; no renamed file's old name still in use. Quoted strings \
            that are not URLs (module ids in a bundle, object keys) are no finding. One line per \
            finding, naming the file; exit 0 when clean, 1 with findings, 2 when it cannot run.

            Example:
              stamp assets verify dist-hashed
            """
    )

    @Argument(help: "The hashed folder.")
    var folder: String

    @OptionGroup var naming: AssetNamingOptions

    @Flag(help: "Print one JSON document with the findings (code, path, expected, found, message).")
    var json = false

    func run() throws {
        let findings = try reportingErrors(json: json) { () throws -> [Finding] in
            AssetVerifier.verify(try AssetTree.read(folder), options: try naming.options(output: folder))
        }
        if json {
            printOut(
                JSONValue.encodeString(
                    .object([
                        ("schemaVersion", JSONValue(Int64(OutputSchema.version))), ("folder", .string(folder)),
                        ("ok", .bool(findings.isEmpty)), ("findings", .array(findings.map(\.json))),
                    ])))
        } else {
            for f in findings { printOut(f.message) }
            if findings.isEmpty {
                printError("ok: \(folder)")
            } else {
                printError("\(findings.count) finding(s) in \(folder)")
            }
        }
        if !findings.isEmpty { throw ExitCode(1) }
    }
}

/// How hashed names are made; `hash` and `verify` must be given the same.
struct AssetNamingOptions: ParsableArguments {
    @Option(help: "The manifest's path inside the output folder.")
    var manifest = AssetOptions.defaultManifest

    @Option(help: ArgumentHelp("Files that keep their names (glob, repeatable; ** spans folders).", valueName: "glob"))
    var keep: [String] = []

    @Option(help: "Hex digits of the hash in names (4-64).")
    var length = 8

    /// `--manifest` is a path inside the folder: `out/m.json` for `--output out` means `m.json`;
    /// one that leaves the folder is refused.
    func manifestName(output: String) throws -> String {
        var m = manifest
        let prefix = (Path.clean(output) ?? output) + "/"
        if let c = Path.clean(m), c.hasPrefix(prefix), !output.hasPrefix("/") {
            m = String(c.dropFirst(prefix.count))
        } else if m.hasPrefix("/") {
            let abs =
                Path.clean(output.hasPrefix("/") ? output : FileManager.default.currentDirectoryPath + "/" + output).map
            { "/" + $0 + "/" } ?? ""
            guard let c = Path.clean(m).map({ "/" + $0 }), c.hasPrefix(abs) else {
                throw StampError.usage("--manifest \(manifest): must be a path inside the folder (\(output))")
            }
            m = String(c.dropFirst(abs.count))
        }
        guard !m.hasPrefix("/"), let c = Path.clean(m), c == m || c + "/" != m, !c.isEmpty,
            !m.split(separator: "/").contains("..")
        else {
            throw StampError.usage("--manifest \(manifest): must be a path inside the folder (\(output))")
        }
        return c
    }

    func manifestPath(output: String) -> String { output + "/" + ((try? manifestName(output: output)) ?? manifest) }

    func options(output: String) throws -> AssetOptions {
        guard (4...64).contains(length) else { throw StampError.usage("--length: between 4 and 64") }
        var o = AssetOptions()
        o.length = length
        o.keep = keep.map(Glob.init)
        o.manifestName = try manifestName(output: output)
        return o
    }
}
