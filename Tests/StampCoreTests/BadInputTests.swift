import Foundation
import Testing
import TestSupport
import Hashing
import IO
import Layers
import OCI
@testable import StampCore

/// Bad input: one clear line on stderr naming the thing, a non-zero exit, nothing left behind.
@Suite struct BadInputTests {
    /// Runs `stamp build` from `base` into a fresh folder and checks the failure contract.
    func expectFailure(
        base: String, _ fragments: [String], extra: [String] = [], sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let outDir = try tempDir()
        let r = try stamp(
            ["build", "--base", base, "--version", "v1", "--created", "0", "--output", outDir + "/out.tar"] + extra)
        #expect(r.status != 0, sourceLocation: sourceLocation)
        let lines = r.err.split(separator: "\n")
        #expect(lines.count == 1, "stderr: \(r.err)", sourceLocation: sourceLocation)
        for f in fragments { #expect(r.err.contains(f), "stderr: \(r.err)", sourceLocation: sourceLocation) }
        #expect(r.out.isEmpty, sourceLocation: sourceLocation)
        #expect(listing(outDir).isEmpty, "left behind: \(listing(outDir))", sourceLocation: sourceLocation)
    }

    @Test func digestMismatchOfABaseLayer() throws {
        let dir = try tempDir()
        let layout = try simpleLayout(dir)
        let layer = try firstLayerPath(layout)
        var b = try bytes(layer)
        b[b.count / 2] ^= 0xff
        try Data(b).write(to: URL(fileURLWithPath: layer))
        let digest = "sha256:" + Path.basename(layer)
        try expectFailure(
            base: "oci:\(layout)", ["blob \(digest)", "digest mismatch", "expected \(digest)", "found sha256:"])
    }

    @Test func sizeMismatchOfABaseLayer() throws {
        let dir = try tempDir()
        let layout = try simpleLayout(dir)
        let layer = try firstLayerPath(layout)
        try Data(try bytes(layer) + [0]).write(to: URL(fileURLWithPath: layer))
        try expectFailure(base: "oci:\(layout)", ["sha256:" + Path.basename(layer), "size mismatch"])
    }

    @Test func missingBlob() throws {
        let dir = try tempDir()
        let layout = try simpleLayout(dir)
        let layer = try firstLayerPath(layout)
        unlink(layer)
        try expectFailure(base: "oci:\(layout)", ["missing blob sha256:" + Path.basename(layer)])
    }

    @Test func truncatedArchive() throws {
        let dir = try tempDir()
        try SampleImage.write(to: dir + "/b.tar", format: .ociArchive)
        let b = try bytes(dir + "/b.tar")
        try Data(b.prefix(b.count / 2 + 100)).write(to: URL(fileURLWithPath: dir + "/cut.tar"))
        try expectFailure(base: "oci-archive:\(dir)/cut.tar", ["cut.tar", "truncated"])
    }

    @Test func notAnArchiveAtAll() throws {
        let dir = try tempDir()
        try Data("hello".utf8).write(to: URL(fileURLWithPath: dir + "/x.tar"))
        try expectFailure(base: dir + "/x.tar", ["x.tar", "not a tar archive"])
        try expectFailure(base: dir + "/nope.tar", ["nope.tar", "no such file"])
    }

    @Test func unknownLayerMediaType() throws {
        let dir = try tempDir()
        let layout = try simpleLayout(dir)
        try editLayout(
            layout,
            manifest: { m in
                var layers = m["layers"]!.arrayValue!
                layers[1]["mediaType"] = .string("application/x-mystery")
                m["layers"] = .array(layers)
            })
        try expectFailure(base: "oci:\(layout)", ["unknown media type \"application/x-mystery\"", "layers[1]"])
    }

    @Test func tarEntriesEscapingTheRoot() throws {
        let dir = try tempDir()
        let f = try WritableFile(path: dir + "/evil.tar")
        let tw = TarWriter(sink: f, mtime: 0)
        try tw.addFile("index.json", Array(#"{"schemaVersion":2,"manifests":[]}"#.utf8))
        try tw.addFile("blobs/../../etc/passwd", Array("x".utf8))
        try tw.finish()
        try f.commit(to: dir + "/evil.tar")
        try expectFailure(base: "oci-archive:\(dir)/evil.tar", ["evil.tar", "escapes the archive root"])
    }

    @Test func docker_saveSymlinkOutOfTheArchive() throws {
        let dir = try tempDir()
        let f = try WritableFile(path: dir + "/save.tar")
        let tw = TarWriter(sink: f, mtime: 0)
        try tw.addFile("manifest.json", Array(#"[{"Config":"c.json","RepoTags":[],"Layers":["l/layer.tar"]}]"#.utf8))
        try tw.addFile(
            "c.json",
            Array(
                #"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:0000000000000000000000000000000000000000000000000000000000000000"]}}"#
                    .utf8))
        try tw.begin(.init(path: "l/layer.tar", kind: .symlink("../../../etc/shadow"), mode: 0o777))
        try tw.finish()
        try f.commit(to: dir + "/save.tar")
        try expectFailure(base: "docker-archive:\(dir)/save.tar", ["outside the archive"])
    }

    @Test func unwritableOutput() throws {
        let dir = try tempDir()
        try SampleImage.write(to: dir + "/b.tar", format: .ociArchive)
        let r = try stamp([
            "build", "--base", dir + "/b.tar", "--version", "v1", "--output", dir + "/no/such/folder/out.tar",
        ])
        #expect(r.status != 0)
        #expect(r.err.split(separator: "\n").count == 1 && r.err.contains("no/such/folder"), "\(r.err)")
        let asDir = try stamp(["build", "--base", dir + "/b.tar", "--version", "v1", "--output", "oci-archive:" + dir])
        #expect(asDir.status != 0 && asDir.err.contains("is a directory"), "\(asDir.err)")
        #expect(listing(dir) == ["b.tar"])
    }

    @Test(arguments: [
        (["--version", "v1\nINJECTED=1"], "control character"),
        (["--version", "v1", "--label", "org.opencontainers.image.version=x"], "set by stamp itself"),
        (["--version", "v1", "--env", "novalue"], "not KEY=VALUE"),
        (["--version", "v1", "--platform", "linux"], "OS/ARCH"),
        (["--version", "v1", "--created", "yesterday"], "RFC 3339"),
        (["--version", "v1", "--compression", "lz4"], "gzip, zstd or none"),
        (["--version", "v1", "--profile", "wordpress"], "unknown profile"),
        (["--version", "v1", "--add", "/nonexistent/file:/x"], "no such file"),
        (["--version", "v1", "--add", "Package.swift:relative/path"], "absolute"),
        (["--version", "v1", "--tag", "bad tag"], "--tag"),
        ([String](), "missing --version"),
    ])
    func badSettings(_ args: [String], _ fragment: String) throws {
        let dir = try tempDir()
        try SampleImage.write(to: dir + "/b.tar", format: .ociArchive)
        let r = try stamp(["build", "--base", dir + "/b.tar", "--output", dir + "/o.tar"] + args)
        #expect(r.status == 2)
        #expect(r.err.contains(fragment), "\(r.err)")
        #expect(r.err.split(separator: "\n").count == 1)
        #expect(listing(dir) == ["b.tar"])
    }

    /// A word in a command's place that names no command is a usage error (64) with the
    /// nearest command, before any flag is read: `stamp biuld --version v1` printed stamp's
    /// version and exited 0, a green CI job with no image (issue 28).
    @Test(arguments: [
        (["biuld", "--base", "b.tar", "--version", "v1"], "did you mean 'stamp build'?"),
        (["verfy", "out.tar"], "did you mean 'stamp verify'?"),
        (["assets", "hsh", "dist"], "did you mean 'stamp assets hash'?"),
        (["canary", "promte", "deploy/"], "did you mean 'stamp canary promote'?"),
        (["deploy", "--version", "v1"], "'deploy' is not a command of stamp ("),
    ])
    func aMistypedCommandIsAUsageErrorNeverSuccess(_ args: [String], _ fragment: String) throws {
        let r = try stamp(args)
        #expect(r.status == 64, "\(r.status) \(r.out)")
        #expect(r.out.isEmpty, "\(r.out)")
        let lines = r.err.split(separator: "\n")
        #expect(lines.count == 1 && r.err.hasPrefix("stamp: error: ") && r.err.contains(fragment), "\(r.err)")
    }

    /// Other tools' spellings get the flag stamp uses, not only "Unknown option"; ko's and
    /// buildx's `--tag a,b` and `--platform all` are read as they mean; a misspelt
    /// `STAMP_PROGRESS` is as strict as `--progress` (issue 28).
    @Test func otherToolsSpellingsAreUnderstoodOrAnswered() throws {
        let dir = try tempDir()
        try SampleImage.write(to: dir + "/b.tar", format: .ociArchive)
        for (flag, fix) in [("--insecure", "--tls-verify=false"), ("--load", "docker-archive:FILE")] {
            let r = try stamp(["build", "--base", dir + "/b.tar", "--version", "v1", "--output", dir + "/o.tar", flag])
            #expect(r.status == 64 && r.err.split(separator: "\n").count == 1, "\(r.err)")
            #expect(r.err.contains("\(flag) is not stamp's") && r.err.contains(fix), "\(r.err)")
        }
        let tags = try stamp([
            "build", "--base", dir + "/b.tar", "--version", "v1", "--platform", "all", "--tag", "v1,latest",
            "--output", "oci:\(dir)/layout", "--json",
        ])
        #expect(tags.status == 0, "\(tags.err)")
        let index = try jsonOf(
            String(decoding: try Data(contentsOf: URL(fileURLWithPath: dir + "/layout/index.json")), as: UTF8.self))
        let refs = (index["manifests"]?.arrayValue ?? []).compactMap {
            $0["annotations"]?[AnnotationKey.refName]?.stringValue
        }
        #expect(Set(refs) == ["v1", "latest"], "\(refs)")
        #expect(try jsonOf(tags.out)["platforms"]?.arrayValue?.count == 2)
        let progress = try stamp(
            ["build", "--base", dir + "/b.tar", "--version", "v1", "--output", dir + "/p.tar"],
            env: ["STAMP_PROGRESS": "plian"])
        // Exit 2 with the line, never the version and 0 (a check in ArgumentParser's validate() did that).
        #expect(progress.status == 2 && progress.err.split(separator: "\n").count == 1, "\(progress.err)")
        #expect(progress.err.contains("STAMP_PROGRESS=plian is not a progress mode"), "\(progress.err)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/p.tar"))
    }

    /// The README's table of newcomer mistakes, run as written (issue 28): each row's command in
    /// a folder holding the sample base, its exit status, and its line (the last on stderr; for
    /// `verify`'s findings, stdout). A row the README shows is a row that holds.
    @Test func theREADMEsMistakesAreAnsweredAsWritten() throws {
        let readme = try String(contentsOfFile: repoRoot + "/README.md", encoding: .utf8)
        let table = readme.components(separatedBy: "<!-- mistakes -->\n").dropFirst().first ?? ""
        let row = try Regex(#"^\| [^|]+ \| `(.+)` \| (\d+) \| `(.+)` \|$"#)
        var rows: [(String, Int32, String)] = []
        for line in table.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.isEmpty { break }
            if let m = String(line).wholeMatch(of: row) {
                rows.append((String(m[1].substring!), Int32(m[2].substring!)!, String(m[3].substring!)))
            }
        }
        #expect(rows.count >= 21, "\(rows.count) rows")
        let dir = try tempDir()
        try SampleImage.write(to: dir + "/base.tar", format: .ociArchive)
        let port = "\(freePort())"
        _ = try makeTestCertificates(dir)
        let tls = try TestRegistry(tls: (dir + "/server.crt", dir + "/server.key"))
        let path =
            URL(fileURLWithPath: stampBin).deletingLastPathComponent().path + ":"
            + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
        for (command, status, line) in rows {
            let real = command.replacingOccurrences(of: "PORT", with: port).replacingOccurrences(
                of: "TLSHOST", with: tls.host)
            let r = try run(
                ["sh", "-c", "cd \"$0\" && eval \"$1\"", dir, real],
                env: ["PATH": path, "STAMP_PROGRESS": "quiet", "STAMP_CACHE_DIR": testCacheDir])
            let said = line.replacingOccurrences(of: "PORT", with: port)
            #expect(r.status == status, "\(command): exit \(r.status)\n\(r.err)")
            let last = r.err.split(separator: "\n").last.map(String.init) ?? ""
            if status == 1 {
                #expect(r.out.contains(said), "\(command): \(r.out)")
            } else {
                #expect(last.hasPrefix("stamp: error: ") && last.contains(said), "\(command): \(r.err)")
            }
        }
        // Nothing half-written by any of them.
        for never in ["out.tar", "hashed", "missing"] {
            #expect(!FileManager.default.fileExists(atPath: dir + "/" + never), "\(never) was written")
        }
    }

    /// `sample` says what it wrote and what to run next (it printed nothing).
    @Test func sampleSaysWhatItWrote() throws {
        let dir = try tempDir()
        let r = try stamp(["sample", "--output", dir + "/b.tar"])
        #expect(r.status == 0 && r.out.isEmpty)
        #expect(
            r.err == "stamp: wrote a sample base (oci-archive, linux/amd64, linux/arm64/v8) to \(dir)/b.tar; next: "
                + "stamp build --base \(dir)/b.tar --version v1 --output stamped.tar\n", "\(r.err)")
    }

    /// Where /proc is not mounted (a bare chroot) Swift cannot read the command line: stamp says
    /// so and fails; it printed the general help and exited 0, every command a silent success.
    @Test func aCommandLineThatCannotBeReadIsAnError() throws {
        let dir = try tempDir()
        let r = try run([
            "unshare", "--mount", "--propagation", "private", "sh", "-c",
            "umount -l /proc && exec \"$0\" build --base b.tar --version v1 --output \"$1/o.tar\"", stampBin, dir,
        ])
        #expect(r.status == 2, "\(r.status) \(r.out) \(r.err)")
        #expect(r.out.isEmpty && r.err.split(separator: "\n").count == 1, "\(r.out)\(r.err)")
        #expect(r.err.contains("the command line cannot be read") && r.err.contains("/proc"), "\(r.err)")
        #expect(listing(dir).isEmpty)
    }

    @Test func namedImageMustExist() throws {
        let dir = try tempDir()
        try SampleImage.write(to: dir + "/b.tar", format: .ociArchive)
        try expectFailure(base: "oci-archive:\(dir)/b.tar:2.0.0", ["no image named \"2.0.0\"", "1.16.0"])
    }
}
