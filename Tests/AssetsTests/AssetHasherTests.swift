import Foundation
import Testing
import TestSupport
import Hashing
import OCI
@testable import Assets

func files(_ pairs: [(String, String)]) -> [AssetFile] { pairs.map { AssetFile(path: $0.0, bytes: Array($0.1.utf8)) } }

extension AssetResult {
    func text(_ original: String) -> String? {
        guard let p = renames[original] else { return nil }
        return files.first { $0.path == p }.map { String(decoding: $0.bytes, as: UTF8.self) }
    }
    func name(_ original: String) -> String { renames[original] ?? "?" }
}

@Suite struct AssetHasherTests {
    @Test func namesKeepStemAndLastExtension() throws {
        let r = try AssetHasher.hash(
            files([
                ("index.css", "body{}"), ("img/My Logo (1).svg", "<svg/>"), ("a.b.c.js", "x"),
                (
                    "index.html",
                    #"<link href="index.css"><img src="img/My%20Logo%20(1).svg"><script src="a.b.c.js"></script>"#
                ),
            ]))
        let h = Digester.hex(Array("body{}".utf8)).prefix(8)
        #expect(r.name("index.css") == "index.\(h).css")
        #expect(r.name("img/My Logo (1).svg").hasPrefix("img/My Logo (1)."))
        #expect(r.name("img/My Logo (1).svg").hasSuffix(".svg"))
        #expect(r.name("a.b.c.js").hasPrefix("a.b.c.") && r.name("a.b.c.js").count == "a.b.c.".count + 8 + 3)
    }

    @Test func entryDocumentsKeepTheirNames() throws {
        let r = try AssetHasher.hash(
            files([
                ("index.html", "<script src=\"/app.js\"></script>"), ("_index.html", ""), ("robots.txt", ""),
                ("favicon.ico", "i"), ("manifest.json", "{}"), ("site.webmanifest", "{}"),
                ("service-workers/push.js", "self"), ("sw.js", "self"), ("version.json", "{}"),
                ("embed/widget.min.js", "w"), ("app.js", "a"), ("LICENSE", "MIT"),
            ]),
            options: {
                var o = AssetOptions()
                o.keep = [Glob("embed/**")]
                return o
            }())
        for p in [
            "index.html", "_index.html", "robots.txt", "favicon.ico", "manifest.json", "site.webmanifest",
            "service-workers/push.js", "sw.js", "version.json", "embed/widget.min.js", "LICENSE",
        ] {
            #expect(r.name(p) == p, "\(p) must keep its name")
        }
        #expect(r.name("app.js") != "app.js")
        #expect(r.text("index.html") == "<script src=\"/\(r.name("app.js"))\"></script>")
    }

    @Test(arguments: [
        // HTML attributes and link relations
        (
            "index.html", #"<img src="logo.png"><img src='./logo.png'><a href="/logo.png">"#,
            #"<img src="N"><img src='./N'><a href="/N">"#
        ),
        (
            "index.html", #"<img srcset="logo.png 1x, /logo.png 2x" poster=logo.png>"#,
            #"<img srcset="N 1x, /N 2x" poster=N>"#
        ),
        (
            "index.html", #"<link rel="modulepreload" href="/logo.png"><link rel=icon href=logo.png>"#,
            #"<link rel="modulepreload" href="/N"><link rel=icon href=N>"#
        ),
        // CSS url() in every quoting, query and fragment kept, @import
        (
            "s.css", "a{b:url(logo.png)}c{d:url('logo.png?v=2')}e{f:url(\"/logo.png#x\")}",
            "a{b:url(N)}c{d:url('N?v=2')}e{f:url(\"/N#x\")}"
        ),
        ("s.css", "@import \"logo.png\";@import url(./logo.png);", "@import \"N\";@import url(./N);"),
        // JS imports, dynamic import, new URL, Vite preload lists
        (
            "m.js", "import a from \"./logo.png\";import \"./logo.png\";import('./logo.png');",
            "import a from \"./N\";import \"./N\";import('./N');"
        ),
        (
            "m.js", "new URL(\"./logo.png\", import.meta.url);const d=[\"sub/../logo.png\"]",
            "new URL(\"./N\", import.meta.url);const d=[\"sub/../N\"]"
        ),
        // left alone: schemes, protocol-relative, data:, API paths
        (
            "m.js",
            "fetch('/api/ping');x='https://cdn.example/logo.png';y='//cdn/logo.png';z='data:image/png;base64,AA'",
            "fetch('/api/ping');x='https://cdn.example/logo.png';y='//cdn/logo.png';z='data:image/png;base64,AA'"
        ),
        // bare names resolved against the module, as the browser does (case 2)
        (
            "m.js",
            "new URL(\"logo.png\", import.meta.url);new URL(`logo.png`,import.meta.url);importScripts('logo.png')",
            "new URL(\"N\", import.meta.url);new URL(`N`,import.meta.url);importScripts('N')"
        ),
        // names with a literal space in a quoted attribute (case 10) are in the next test
        // web manifest icons
        (
            "manifest.json", #"{"icons":[{"src":"/logo.png"},{"src":"logo.png"}]}"#,
            #"{"icons":[{"src":"/N"},{"src":"N"}]}"#
        ),
    ])
    func rewritesReferences(_ path: String, _ source: String, _ expected: String) throws {
        // ref.html refers to the image in every case: a file nothing refers to keeps its name.
        let r = try AssetHasher.hash(
            files([(path, source), ("logo.png", "PNG"), ("ref.html", #"<img src="/logo.png">"#)]))
        let n = r.name("logo.png")
        #expect(n.hasPrefix("logo.") && n != "logo.png")
        #expect(
            r.text(path) == expected.replacingOccurrences(of: "N", with: n).replacingOccurrences(of: "\(n)", with: n))
    }

    @Test func percentEncodedReferencesKeepTheirEncoding() throws {
        let r = try AssetHasher.hash(
            files([("index.html", #"<img src="img/My%20Logo%20(1).svg">"#), ("img/My Logo (1).svg", "<svg/>")]))
        let hash = r.name("img/My Logo (1).svg").split(separator: ".").dropLast().last!
        #expect(r.text("index.html") == #"<img src="img/My%20Logo%20(1).\#(hash).svg">"#)
    }

    @Test func sourceMapsAndTheirFiles() throws {
        let r = try AssetHasher.hash(
            files([
                ("a.js", "x\n//# sourceMappingURL=a.js.map\n"),
                ("a.js.map", #"{"file":"a.js","sources":["../src/a.ts"]}"#),
                ("s.css", "b{}\n/*# sourceMappingURL=s.css.map */"), ("s.css.map", #"{"file":"s.css"}"#),
            ]))
        let js = r.name("a.js"), map = r.name("a.js.map")
        #expect(map.hasPrefix("a.js.") && map.hasSuffix(".map"))
        #expect(r.text("a.js") == "x\n//# sourceMappingURL=\(map)\n")
        #expect(r.text("a.js.map") == #"{"file":"\#(js)","sources":["../src/a.ts"]}"#)
        #expect(r.text("s.css")!.hasSuffix("sourceMappingURL=\(r.name("s.css.map")) */"))
    }

    /// A name never serves two contents: a changed file renames everything that references it,
    /// and nothing else.
    @Test func changesCascadeToReferrersOnly() throws {
        let base = [
            ("index.html", #"<link href="/app.css"><script src="/app.js"></script>"#), ("app.css", "a{b:url(bg.png)}"),
            ("bg.png", "PNG1"), ("app.js", "console.log(1)"), ("font.woff2", "FONT"),
        ]
        let one = try AssetHasher.hash(files(base))
        var changed = base
        changed[2] = ("bg.png", "PNG2")
        let two = try AssetHasher.hash(files(changed))
        #expect(one.name("bg.png") != two.name("bg.png"))
        #expect(one.name("app.css") != two.name("app.css"))  // its reference changed
        #expect(one.name("app.js") == two.name("app.js"))
        #expect(one.name("font.woff2") == two.name("font.woff2"))
        #expect(one.name("index.html") == "index.html")
    }

    /// Vite: the entry imports a lazy chunk and the chunk imports the entry back.
    @Test func cyclesAreHashedAsAGroup() throws {
        let base = [
            ("index.js", "import('./assets/chunk-3f9a1c0b.js');"),
            ("assets/chunk-3f9a1c0b.js", "import '../index.js';export const c=1;"),
            ("index.html", #"<script type="module" src="/index.js"></script>"#),
        ]
        let r = try AssetHasher.hash(files(base))
        let entry = r.name("index.js"), chunk = r.name("assets/chunk-3f9a1c0b.js")
        #expect(entry.hasPrefix("index.") && chunk.hasPrefix("assets/chunk-3f9a1c0b."))
        #expect(
            r.text("index.js")
                == "import('./\(chunk.dropFirst("assets/".count).description)');".replacingOccurrences(
                    of: "./chunk", with: "./assets/chunk"))
        #expect(r.text("assets/chunk-3f9a1c0b.js") == "import '../\(entry)';export const c=1;")
        var changed = base
        changed[1] = ("assets/chunk-3f9a1c0b.js", "import '../index.js';export const c=2;")
        let r2 = try AssetHasher.hash(files(changed))
        #expect(r2.name("index.js") != entry && r2.name("assets/chunk-3f9a1c0b.js") != chunk)
        #expect(AssetVerifier.verify(r.files).isEmpty)
    }

    @Test func hashingItsOwnOutputChangesNothing() throws {
        let base = files([
            ("index.html", #"<script src="/index.js"></script><link href="index.css">"#),
            ("index.js", "import('./c.js')"),
            ("c.js", "import './index.js'"), ("index.css", "a{b:url(x.svg)}"), ("x.svg", "<svg/>"),
            ("robots.txt", "ok"),
        ])
        let once = try AssetHasher.hash(base)
        let twice = try AssetHasher.hash(once.files)
        #expect(once.files == twice.files)
        #expect(twice.renames.allSatisfy { $0.key == $0.value })
    }

    @Test func manifestHasSizeSha256AndSRI() throws {
        let r = try AssetHasher.hash(
            files([("app.js", "console.log(1)"), ("index.html", #"<script src="app.js"></script>"#)]))
        let m = try JSONSerialization.jsonObject(with: Data(try r.manifestBytes())) as! [String: Any]
        let entry = (m["files"] as! [String: Any])["app.js"] as! [String: Any]
        let bytes = Array("console.log(1)".utf8)
        #expect(entry["path"] as? String == r.name("app.js"))
        #expect((entry["size"] as? NSNumber)?.intValue == bytes.count)
        #expect(entry["sha256"] as? String == Digester.hex(bytes))
        let d = Digester(.sha384)
        d.update(bytes)
        #expect(entry["integrity"] as? String == "sha384-" + Data(d.finalizeBytes()).base64EncodedString())
        #expect(entry["cache"] as? String == "immutable" && entry["hash"] as? String == "stamp")
        let page = (m["files"] as! [String: Any])["index.html"] as! [String: Any]
        #expect(page["cache"] as? String == "revalidate" && page["kept"] as? String == "a page" && page["hash"] == nil)
        #expect(m["generator"] as? String == "stamp")
        #expect(r.files.contains { $0.path == "stamp-assets.json" })
    }

    /// The manifest is written in pieces from compact records (a tree of 100,000 files would
    /// otherwise hold it as a JSON tree and as one buffer): its bytes are the JSON encoder's for
    /// what it says, over many pieces of the spool, with names that need escapes, and empty.
    @Test func theStreamedManifestIsWhatTheEncoderWrites() throws {
        var input = [("index.html", #"<script src="app.js"></script>"#), ("app.js", "console.log(1)")]
        for i in 0..<600 { input.append(("a/q\u{22}uote \\ \(i).css", ".c\(i){}")) }
        var o = AssetOptions()
        o.spool = try AssetSpool()
        let r = try AssetHasher.hash(files(input), options: o)
        let spooled = try #require(r.manifestFile.spooledText)
        #expect(spooled.size > 64 << 10, "more than one piece: \(spooled.size)")
        let bytes = try r.manifestBytes()
        #expect(JSONValue.encodePretty(try JSONValue.parse(bytes)) == bytes)
        #expect(try r.manifestBytes() == AssetHasher.hash(files(input)).manifestBytes())
        let empty = try AssetHasher.hash(files([("version.json", "{}")])).manifestBytes()
        #expect(JSONValue.encodePretty(try JSONValue.parse(empty)) == empty)
        #expect(String(decoding: empty, as: UTF8.self).contains(#""files": {}"#))
    }

    @Test func sriAddsIntegrityAttributes() throws {
        var o = AssetOptions()
        o.sri = true
        let r = try AssetHasher.hash(
            files([
                ("index.html", #"<script type="module" src="/app.js"></script><link rel="stylesheet" href="app.css">"#),
                ("app.js", "1"), ("app.css", "a{}"),
            ]), options: o)
        let html = r.text("index.html")!
        #expect(
            html.contains(
                "<script integrity=\"\(AssetHasher.sri(Array("1".utf8)))\" type=\"module\" "
                    + "src=\"/\(r.name("app.js"))\">"
            ))
        #expect(html.contains("<link integrity=\"\(AssetHasher.sri(Array("a{}".utf8)))\" rel=\"stylesheet\""))
    }

    /// A name an earlier run gave (its manifest says so) and the file it came from, side by
    /// side: one would overwrite the other.
    @Test func collidingNamesAreRefused() throws {
        let once = try AssetHasher.hash(files([("a.js", "1")]))
        var again = once.files
        again.append(AssetFile(path: "a.js", bytes: Array("2".utf8)))
        #expect(throws: AssetError.self) { try AssetHasher.hash(again) }
        // A file named like the manifest that is not one is refused, not replaced.
        #expect(
            throws: AssetError.invalid(
                "stamp-assets.json: the folder has a file of this name that is not stamp's manifest; choose another "
                    + "name (--manifest)"
            )
        ) {
            try AssetHasher.hash(files([("a.js", "1"), ("stamp-assets.json", "{}")]))
        }
    }
}

@Suite struct AssetVerifierTests {
    func hashed() throws -> [AssetFile] {
        try AssetHasher.hash(
            files([
                ("index.html", #"<script src="/app.js"></script>"#), ("app.js", "import('./c.js')"),
                ("c.js", "import './app.js'"), ("a.css", "x{y:url(i.png)}"), ("i.png", "P"),
            ])
        ).files
    }

    @Test func cleanTreePasses() throws { #expect(AssetVerifier.verify(try hashed()).isEmpty) }

    /// What the JSON parser reads of a manifest, whole: the oracle the streamed reader is held to.
    func wholeRead(_ bytes: [UInt8]) -> [String: String]? {
        guard let root = try? JSONValue.parse(bytes), root["algorithm"]?.stringValue == "sha256",
            let files = root["files"]?.objectValue
        else { return nil }
        var out: [String: String] = [:]
        for (k, e) in files {
            guard let p = e["path"]?.stringValue, let n = e["size"]?.int64Value, n >= 0,
                let sha = e["sha256"]?.stringValue,
                let integrity = e["integrity"]?.stringValue
            else { return nil }
            out[k] = p + " \(n) \(sha) \(integrity)"
        }
        return out
    }

    /// The manifest is read streamed, a value at a time (a 100,000-file tree's is 33 MB): read
    /// in pieces of any size it gives what the whole parse gives, and refuses what it refuses.
    @Test func theStreamedManifestReaderAgreesWithTheWholeParse() throws {
        var input = [("index.html", #"<script src="app.js"></script>"#), ("app.js", "console.log(1)")]
        for i in 0..<40 { input.append(("x/\u{e9}t\u{e9} \\ \"\(i).css", ".c\(i){}")) }
        let good = try AssetHasher.hash(files(input)).manifestBytes()
        let text = String(decoding: good, as: UTF8.self)
        var cases = [
            text, text + " ", text + "x", String(text.dropLast(3)), text.replacingOccurrences(of: "\",\n", with: "\n"),
            text.replacingOccurrences(of: "\"size\": 14", with: "\"size\": -14"),
            text.replacingOccurrences(of: "\"size\": 14", with: "\"size\": 1e2"),
            text.replacingOccurrences(of: "\"size\": 14", with: "\"size\": [14]"),
            text.replacingOccurrences(of: "\"algorithm\": \"sha256\"", with: "\"algorithm\": \"md5\""),
            text.replacingOccurrences(
                of: "\"generator\"", with: "\"more\": {\"a\": [1, {\"b\": \"}\"}]}, \"generator\""),
            text.replacingOccurrences(
                of: "\"generator\"", with: "\"more\": {\"a\": [1, {\"b\": \"}\"]}, \"generator\""),
            #"{"algorithm": "sha256", "files": {}}"#, #"{"files": {}, "algorithm": "sha256"}"#,
            #"{"algorithm": "sha256", "files": {"a": {"path": "b", "size": 1, "sha256": "s", "integrity": "i"},}}"#,
            #"{"algorithm": "sha256", "files": {"a": {"path": "b", "size": 1, "sha256": "s", "integrity": "i"}, "a": {"path": "c", "size": 2, "sha256": "s", "integrity": "i"}}}"#,
            #"{"algorithm": "sha256", "files": {"a\u0041": {"path": "b\"", "size": 1, "sha256": "s", "integrity": "i"}}}"#,
            "[]", "", "{", #"{"algorithm": "sha256", "files": {"a": "#,
        ]
        cases.append(String(repeating: "[", count: 600) + String(repeating: "]", count: 600))
        for (n, c) in cases.enumerated() {
            let bytes = Array(c.utf8)
            let oracle = wholeRead(bytes)
            for piece in [1, 7, 4096] {
                let streamed = ManifestReader.entries(size: bytes.count) { at, count in
                    Array(bytes[at..<at + min(piece, count)])
                }.map { entries in
                    // The digests come back as written, whether held as bytes (stamp's own) or not ("s", "i").
                    Dictionary(
                        uniqueKeysWithValues: entries.map { k, e in
                            (k, e.path + " \(e.size) \(e.sha256) \(e.integrity)")
                        })
                }
                #expect(streamed == oracle, "case \(n), pieces of \(piece): \(c.prefix(120))")
            }
        }
        #expect(wholeRead(good)?.count == 42)
    }

    @Test func findsWrongNamesBrokenReferencesAndManifestDisagreements() throws {
        var f = try hashed()
        let png = f.firstIndex { $0.path.hasPrefix("i.") }!
        f[png].bytes = Array("Q".utf8)  // bytes no longer match the name
        let css = f.firstIndex { $0.path.hasSuffix(".css") }!
        f[css].bytes += Array("z{w:url(./missing.png)}".utf8)  // dangling reference (and a changed name)
        f.append(AssetFile(path: "plain.js", bytes: [1]))  // not in the manifest
        let findings = AssetVerifier.verify(f).map(\.message)
        #expect(findings.contains { $0.hasPrefix(f[png].path + ": name does not match its content") })
        #expect(findings.contains { $0.hasPrefix(f[css].path + ": reference \"./missing.png\" does not resolve") })
        #expect(findings.contains { $0 == "plain.js: not in stamp-assets.json" })
        #expect(
            findings.contains {
                $0.hasPrefix("\(f[png].path): has sha256 ")
                    && $0.hasSuffix("stamp-assets.json says \(Digester.hex(Array("P".utf8)))")
            })
    }

    @Test func aManifestNameMustBeAHashedNameOfItsOriginal() {
        let n = Naming(length: 8)
        #expect(AssetVerifier.isHashedName("img/My Logo.1a2b3c4d.svg", of: "img/My Logo.svg", n))
        #expect(!AssetVerifier.isHashedName("img/Other.1a2b3c4d.svg", of: "img/Logo.svg", n))
        #expect(!AssetVerifier.isHashedName("img/Logo.1a2b3c4z.svg", of: "img/Logo.svg", n))
        #expect(!AssetVerifier.isHashedName("img/Logo.svg", of: "img/Logo.svg", n))
    }

    @Test func cycleMembersAreCheckedAsAGroup() throws {
        var f = try hashed()
        let c = f.firstIndex { $0.path.hasPrefix("c.") }!
        f[c].bytes += Array(";".utf8)
        let findings = AssetVerifier.verify(f).map(\.message)
        #expect(findings.contains { $0.hasPrefix(f[c].path + ": name does not match") })
        #expect(findings.contains { $0.contains("app.") && $0.contains("name does not match") })
    }
}

@Suite struct GlobTests {
    @Test(arguments: [
        ("*.html", "index.html", true), ("*.html", "a/b/index.html", true), ("embed/**", "embed/x/y.js", true),
        ("embed/**", "other/embed/x.js", false), ("**/service-workers/**", "service-workers/push.js", true),
        ("a/*.js", "a/b/c.js", false), ("a/**/c.js", "a/c.js", true), ("a/**/c.js", "a/x/y/c.js", true),
        ("img/?.png", "img/a.png", true), ("img/[ab].png", "img/c.png", false),
        (".well-known/**", ".well-known/x", true),
    ])
    func matches(_ glob: String, _ path: String, _ expected: Bool) {
        #expect(Glob(glob).matches(path) == expected)
    }
}

@Suite struct OnDiskAssetTests {
    /// Binary files read from a folder stay on disk; names, manifest and output are the same as
    /// when every byte is in memory.
    @Test func binaryFilesStayOnDiskWithTheSameResult() throws {
        let dir = try tempDir()
        try FileManager.default.createDirectory(atPath: dir + "/img", withIntermediateDirectories: true)
        let png = (0..<70_000).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 7) }
        try Data(png).write(to: URL(fileURLWithPath: dir + "/img/logo.png"))
        // Large enough to be left on disk and spooled once rewritten (AssetTree.largeFile).
        try Data(
            (#"a{background:url(./img/logo.png)}/*"# + String(repeating: "x", count: AssetTree.largeFile) + "*/").utf8
        )
        .write(to: URL(fileURLWithPath: dir + "/index.css"))
        try Data(#"<link rel="stylesheet" href="/index.css">"#.utf8).write(
            to: URL(fileURLWithPath: dir + "/index.html"))

        let read = try AssetTree.read(dir)
        let logo = try #require(read.first { $0.path == "img/logo.png" })
        #expect(logo.bytes.isEmpty && logo.onDisk?.size == png.count && logo.sha256Hex == Digester.hex(png))
        #expect(read.first { $0.path == "index.css" }?.onDisk == nil)

        let inMemory = read.map { f in f.onDisk == nil ? f : AssetFile(path: f.path, bytes: png) }
        let a = try AssetHasher.hash(read, options: .init()), b = try AssetHasher.hash(inMemory, options: .init())
        #expect(a.renames == b.renames)
        #expect(try a.manifestBytes() == b.manifestBytes())
        #expect(a.renames["img/logo.png"] == "img/logo.\(Digester.hex(png).prefix(8)).png")

        // Written out, the file is copied from disk; the verifier accepts the tree either way.
        try AssetTree.write(a.files, to: dir + "-out")
        let written = try Data(contentsOf: URL(fileURLWithPath: dir + "-out/" + a.renames["img/logo.png"]!))
        #expect(Array(written) == png)
        #expect(AssetVerifier.verify(try AssetTree.read(dir + "-out")).isEmpty)
        #expect(AssetVerifier.verify(b.files).isEmpty)

        // Scripts and styles left on disk too, and the renamed ones spooled: the same result,
        // byte for byte, with no script bytes in the result's memory.
        var spooled = AssetOptions()
        spooled.spool = try AssetSpool()
        let lazy = try AssetTree.read(dir, lazyText: true)
        #expect(lazy.first { $0.path == "index.css" }?.textFile == dir + "/index.css")
        let c = try AssetHasher.hash(lazy, options: spooled)
        #expect(try c.renames == a.renames && c.manifestBytes() == a.manifestBytes())
        let css = try #require(c.files.first { $0.path == a.renames["index.css"] })
        #expect(css.bytes.isEmpty && css.onDisk?.spool != nil)
        try AssetTree.write(c.files, to: dir + "-out2")
        for f in a.files {
            #expect(
                try Data(contentsOf: URL(fileURLWithPath: dir + "-out2/" + f.path))
                    == Data(contentsOf: URL(fileURLWithPath: dir + "-out/" + f.path)))
        }
    }

    /// The one-call digest of bytes in memory agrees with the published vectors and with the
    /// streaming digester fed in pieces; a sequence without contiguous storage takes the
    /// streaming path and agrees too.
    @Test func oneCallDigestsAgreeWithStreaming() {
        #expect(Digester.hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(
            Digester.hex(Array("abc".utf8), .sha384)
                == "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7")
        let big = (0..<1_000_003).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 11) }
        for algorithm in [HashAlgorithm.sha256, .sha384] {
            let d = Digester(algorithm)
            for start in stride(from: 0, to: big.count, by: 65_521) {
                big[start..<min(start + 65_521, big.count)].withUnsafeBytes { d.update($0) }
            }
            let streamed = d.finalizeBytes()
            #expect(Digester.bytes(big, algorithm) == streamed)
            #expect(Digester.bytes(big.lazy.map { $0 }, algorithm) == streamed)
        }
    }

    /// The folder writer makes nested folders as files arrive in any order, and refuses a
    /// non-empty destination without touching it.
    @Test func writerMakesNestedFolders() throws {
        let dir = testRoot + "/writer-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let paths = ["z.js", "a/b/c/deep.js", "a/top.js", "a/b/mid.css", "q/r.txt", "a/b/c/d/e/f.js"]
        try AssetTree.write(paths.map { AssetFile(path: $0, bytes: Array("<\($0)>".utf8)) }, to: dir)
        for p in paths { #expect(try String(contentsOfFile: dir + "/" + p, encoding: .utf8) == "<\(p)>") }
        let listed = try AssetTree.read(dir).map(\.path)
        #expect(listed == paths.sorted(by: { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }))
        #expect(throws: AssetError.self) { try AssetTree.write([AssetFile(path: "x.js", bytes: [])], to: dir) }
        #expect(try String(contentsOfFile: dir + "/z.js", encoding: .utf8) == "<z.js>")
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: dir + "/..").filter {
                $0.hasPrefix((dir as NSString).lastPathComponent + ".stamp-")
            }.isEmpty)
    }
}

/// The scanners pass over bytes sixteen at a time: every index a byte-by-byte search finds must
/// still be found, at chunk edges, in the tail shorter than a chunk, and in empty input.
@Suite struct ByteSkipTests {
    @Test func findsWhatAByteByByteSearchFinds() {
        let wanted: [UInt8] = [0x22, 0x27, 0x60, 0x3D]
        let skip = ByteSkip(wanted)
        var rng = SystemRandomNumberGenerator()
        for length in [0, 1, 15, 16, 17, 31, 32, 33, 100, 1000] {
            for _ in 0..<50 {
                // Sparse wanted bytes among others, as in a minified script.
                let bytes = (0..<length).map { _ in
                    Int.random(in: 0..<40, using: &rng) == 0
                        ? wanted.randomElement(using: &rng)! : UInt8.random(in: 0x61...0x7A, using: &rng)
                }
                var expected: [Int] = [], found: [Int] = []
                for (k, b) in bytes.enumerated() where wanted.contains(b) { expected.append(k) }
                bytes.withUnsafeBufferPointer { b in
                    var i = skip.next(b, from: 0)
                    while i < b.count {
                        found.append(i)
                        i = skip.next(b, from: i + 1)
                    }
                    #expect(i == b.count)
                }
                #expect(found == expected, "length \(length)")
            }
        }
    }
}
