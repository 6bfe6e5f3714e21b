import Foundation
import Testing
import TestSupport
import Hashing
import IO
import Layers
import OCI
@testable import StampCore

/// `--hash-assets` and `--assets` inside the image, checked through umoci's unpacked rootfs.
@Suite struct AssetImageTests {
    func unpack(_ archive: String, _ dir: String) throws -> String {
        #expect(try run(["skopeo", "copy", "oci-archive:\(archive)", "oci:\(dir)/layout:x"]).status == 0)
        let u = try run(["umoci", "unpack", "--rootless", "--image", "\(dir)/layout:x", "\(dir)/bundle"])
        #expect(u.status == 0, "\(u.err)")
        return dir + "/bundle/rootfs"
    }

    func tree(_ dir: String) -> [String] {
        (FileManager.default.enumerator(atPath: dir)?.allObjects as? [String] ?? []).filter {
            !Path.isDirectory(dir + "/" + $0)
        }.sorted()
    }

    @Test func hashesTheImagesFrontend() throws {
        let dir = try tempDir()
        try SampleImage.write(to: dir + "/b.tar", format: .ociArchive)
        var s = settings(dir + "/b.tar", "oci-archive:\(dir)/o.tar")
        s.hashAssets = true
        s.platforms = ["linux/amd64"]
        _ = try build(s)
        let rootfs = try unpack(dir + "/o.tar", dir)
        let pub = rootfs + "/app/server/public"
        let files = tree(pub)
        // Old names are gone (whiteouts), hashed names are there, entry documents kept.
        #expect(
            !files.contains("index.js") && !files.contains("index.css") && !files.contains("assets/index-3f9a1c0b.js"))
        let js = try #require(files.first { $0.hasPrefix("index.") && $0.hasSuffix(".js") })
        let css = try #require(files.first { $0.hasPrefix("index.") && $0.hasSuffix(".css") })
        #expect(files.contains("_index.html") && files.contains("robots.txt") && files.contains("manifest.json"))
        #expect(files.contains("stamp-assets.json") && files.contains("version.json"))
        #expect(files.contains("favicon.png") && !files.contains("assets/logo.png"))
        #expect(try String(contentsOfFile: pub + "/_index.html", encoding: .utf8).contains("src=\"/\(js)\""))
        // The server's hard-coded names are rewritten too.
        let meta = try String(contentsOfFile: rootfs + "/app/server/utils/boot/MetaGenerator.js", encoding: .utf8)
        #expect(meta.contains("/\(js)") && meta.contains("/\(css)"))
        // Names match their bytes, as a folder check sees them.
        let check = try stamp(["assets", "verify", pub, "--keep", "embed/**"])
        #expect(check.status == 0, "\(check.out)")
        let vj = try readJSON(rootfs + "/app/version.json")
        #expect(vj["assets"]?["manifestDigest"]?.stringValue == Digester.digest(try bytes(pub + "/stamp-assets.json")))
        let v = try stamp(["verify", dir + "/o.tar"])
        #expect(v.status == 0, "\(v.out)")
    }

    /// A text asset (read into memory) and a binary one (checked by digests alone).
    @Test(arguments: [("index.", ".css"), ("assets/logo.", ".png")])
    func verifyFindsATamperedAsset(_ stem: String, _ suffix: String) throws {
        let dir = try tempDir()
        try SampleImage.write(to: dir + "/b.tar", format: .ociArchive)
        var s = settings(dir + "/b.tar", "oci:\(dir)/out")
        s.hashAssets = true
        s.platforms = ["linux/amd64"]
        _ = try build(s)
        // The stamp layer again, with other bytes under the hashed CSS name.
        let img = try ImageReader.open(.ociLayout(path: dir + "/out", ref: nil))
        let stampFiles = try StampReader.files(in: img.images[0].layers.last!, store: img.store)
        let css = try #require(
            stampFiles.keys.first { $0.hasPrefix("app/server/public/" + stem) && $0.hasSuffix(suffix) })
        let tar = MemorySink()
        let tw = TarWriter(sink: tar, mtime: 0)
        for (p, f) in stampFiles.sorted(by: { $0.key < $1.key }) {
            try tw.addFile(p, p == css ? Array("body{color:red}".utf8) : f.bytes, mode: f.mode)
        }
        try tw.finish()
        try replaceLastLayer(of: dir + "/out", with: tar.bytes)
        let r = try stamp(["verify", "oci:\(dir)/out"])
        #expect(r.status == 1)
        #expect(r.out.contains("linux/amd64: /\(css): name does not match its content"), "\(r.out)")
        #expect(
            r.out.contains("/app/server/public/\(css.dropFirst("app/server/public/".count)): has sha256"), "\(r.out)")
        #expect(try stamp(["verify", "oci:\(dir)/out", "--integrity-only"]).status == 0)
    }

    @Test func aLocalBuildReplacesTheFrontend() throws {
        let dir = try tempDir()
        try SampleImage.write(to: dir + "/b.tar", format: .ociArchive)
        let dist = dir + "/dist"
        try FileManager.default.createDirectory(atPath: dist + "/assets", withIntermediateDirectories: true)
        try Data(#"<script type="module" src="/assets/main.js"></script>"#.utf8).write(
            to: URL(fileURLWithPath: dist + "/_index.html"))
        try Data("console.log('new frontend')".utf8).write(to: URL(fileURLWithPath: dist + "/assets/main.js"))
        var s = settings(dir + "/b.tar", "oci-archive:\(dir)/o.tar")
        s.assets = dist
        s.platforms = ["linux/amd64"]
        _ = try build(s)
        let rootfs = try unpack(dir + "/o.tar", dir)
        let files = tree(rootfs + "/app/server/public")
        #expect(!files.contains("index.css") && !files.contains("robots.txt"))  // the base's frontend is gone (opaque)
        #expect(files.contains("_index.html") && files.contains("version.json") && files.contains("stamp-assets.json"))
        #expect(files.contains { $0.hasPrefix("assets/main.") && $0.hasSuffix(".js") })
        #expect(try stamp(["verify", dir + "/o.tar"]).status == 0)
        // The source folder is untouched.
        #expect(tree(dist) == ["_index.html", "assets/main.js"])
    }

    @Test func hashCommandOnAFolder() throws {
        let dir = try tempDir()
        let src = dir + "/src"
        try FileManager.default.createDirectory(atPath: src, withIntermediateDirectories: true)
        try Data("<link href=\"app.css\">".utf8).write(to: URL(fileURLWithPath: src + "/index.html"))
        try Data("a{}".utf8).write(to: URL(fileURLWithPath: src + "/app.css"))
        let before = try run(["sh", "-c", "cd '\(src)' && find . -type f | sort | xargs sha256sum"]).out
        let r = try stamp(["assets", "hash", src, "--output", dir + "/out", "--json"])
        #expect(r.status == 0, "\(r.err)")
        #expect(try jsonOf(r.out)["renamed"]?["app.css"]?.stringValue?.hasPrefix("app.") == true)
        #expect(try run(["sh", "-c", "cd '\(src)' && find . -type f | sort | xargs sha256sum"]).out == before)
        #expect(try stamp(["assets", "verify", dir + "/out"]).status == 0)
        let again = try stamp(["assets", "hash", src, "--output", dir + "/out2"])
        #expect(again.status == 0)
        #expect(try run(["diff", "-r", dir + "/out", dir + "/out2"]).status == 0)
        let busy = try stamp(["assets", "hash", src, "--output", dir + "/out"])
        #expect(busy.status == 2 && busy.err.contains("not an empty folder"))
        // A file named like stamp's manifest that is not one: one error line, and the folder
        // being written as files are hashed is gone.
        let clash = dir + "/clash"
        try FileManager.default.createDirectory(atPath: clash, withIntermediateDirectories: true)
        for name in ["x.js", "stamp-assets.json", "index.html"] {
            try Data("//".utf8).write(to: URL(fileURLWithPath: clash + "/" + name))
        }
        let failed = try stamp(["assets", "hash", clash, "--output", dir + "/out3"])
        #expect(
            failed.status == 2
                && failed.err.contains(
                    "stamp-assets.json: the folder has a file of this name that is not stamp's manifest"),
            "\(failed.err)")
        #expect(listing(dir) == ["clash", "out", "out2", "src"], "\(listing(dir))")
        try Data("a{color:red}".utf8).write(
            to: URL(fileURLWithPath: dir + "/out/" + (try jsonOf(r.out)["renamed"]!["app.css"]!.stringValue!)))
        let bad = try stamp(["assets", "verify", dir + "/out"])
        #expect(bad.status == 1)
        #expect(bad.out.split(separator: "\n").allSatisfy { $0.hasPrefix("app.") }, "\(bad.out)")
    }
}

/// `stamp assets hash` as a user runs it: where the manifest goes, server files rewritten
/// beside the folder, the reasons a file kept its name.
@Suite struct AssetsCommandTests {
    func frontend(_ dir: String) throws -> String {
        let src = dir + "/in"
        try FileManager.default.createDirectory(atPath: src + "/assets", withIntermediateDirectories: true)
        try Data(#"<link href="/index.css"><script src="/index.js"></script>"#.utf8).write(
            to: URL(fileURLWithPath: src + "/index.html"))
        try Data("a{}".utf8).write(to: URL(fileURLWithPath: src + "/index.css"))
        try Data("console.log(1)".utf8).write(to: URL(fileURLWithPath: src + "/index.js"))
        try Data("x".utf8).write(to: URL(fileURLWithPath: src + "/assets/late.js"))
        return src
    }

    /// 8. `--manifest` names a file inside the output folder; a path outside it is refused and
    /// nothing is written anywhere.
    @Test func manifestStaysInsideTheOutput() throws {
        let dir = try tempDir()
        let src = try frontend(dir)
        let before = try run(["sh", "-c", "cd '\(dir)' && find . | sort"]).out
        for bad in ["../in/m.json", "/etc/m.json", "a/../../m.json"] {
            let r = try stamp(["assets", "hash", src, "--output", dir + "/out", "--manifest", bad])
            #expect(r.status == 64 || r.status == 2, "\(bad): \(r.status)")
            #expect(r.err.contains("--manifest \(bad): must be a path inside the folder"), "\(r.err)")
            #expect(try run(["sh", "-c", "cd '\(dir)' && find . | sort"]).out == before)
        }
        // The output folder's own name in front is understood, not doubled.
        let r = try stamp([
            "assets", "hash", src, "--output", dir + "/out", "--manifest", dir + "/out/meta/assets.json",
        ])
        #expect(r.status == 0, "\(r.err)")
        #expect(FileManager.default.fileExists(atPath: dir + "/out/meta/assets.json"))
        #expect(
            !FileManager.default.fileExists(atPath: dir + "/out/out")
                && !FileManager.default.fileExists(atPath: dir + "/out/stamp-assets.json"))
        #expect(try stamp(["assets", "verify", dir + "/out", "--manifest", "meta/assets.json"]).status == 0)
        #expect(try stamp(["assets", "verify", dir + "/out"]).status == 1)
    }

    /// A server file that writes the page (anything-llm's MetaGenerator.js) is searched and
    /// rewritten to DEST; a name it builds at run time keeps that file's name; --explain says so.
    @Test func rewriteAndExplain() throws {
        let dir = try tempDir()
        let src = try frontend(dir)
        let server = dir + "/MetaGenerator.js"
        let text =
            #"module.exports=(v)=>`<script src="/index.js"></script><link href="/index.css"><script src="/assets/chunk-${v}.js">`;const late="/assets/late.js";"#
        try Data("c".utf8).write(to: URL(fileURLWithPath: src + "/assets/chunk-a.js"))
        try Data(#"<script src="/assets/chunk-a.js"></script>"#.utf8).write(
            to: URL(fileURLWithPath: src + "/other.html"))
        try Data(text.utf8).write(to: URL(fileURLWithPath: server))
        let r = try stamp([
            "assets", "hash", src, "--output", dir + "/out", "--rewrite", "\(server):\(dir)/Meta.out.js", "--explain",
            "--json",
        ])
        #expect(r.status == 0, "\(r.err)")
        let j = try jsonOf(r.out)
        let js = try #require(j["renamed"]?["index.js"]?.stringValue),
            css = try #require(j["renamed"]?["index.css"]?.stringValue)
        let rewritten = try String(contentsOfFile: dir + "/Meta.out.js", encoding: .utf8)
        let late = try #require(j["renamed"]?["assets/late.js"]?.stringValue)
        #expect(
            rewritten
                == text.replacingOccurrences(of: "/index.js", with: "/" + js).replacingOccurrences(
                    of: "/index.css", with: "/" + css
                )
                .replacingOccurrences(of: "/assets/late.js", with: "/" + late))
        #expect(try String(contentsOfFile: server, encoding: .utf8) == text)
        // A name the server builds at run time keeps its name.
        #expect(
            j["kept"]?["assets/chunk-a.js"]?.stringValue
                == "its name may be built at run time in \(server) (from \"chunk-\")")
        #expect(j["kept"]?["index.html"]?.stringValue == "a page")
        #expect(r.err.contains("kept index.html: a page"))
        #expect(j["rewritten"]?[server]?.stringValue == dir + "/Meta.out.js")
        let refused = try stamp(["assets", "hash", src, "--output", dir + "/out2", "--rewrite", server])
        #expect(refused.status != 0 && refused.err.contains("expected SRC:DEST"))
    }
}

/// Platforms of one base share the asset stage's work only when what it reads of each image
/// (the server files it rewrites) is the same.
@Suite struct SharedAssetStageTests {
    func view(_ metaGenerator: String) -> MergedView {
        var c = MergedView.LayerChanges()
        let p = "app/server/utils/boot/MetaGenerator.js"
        c.items = [(p, MergedView.Entry(type: .file, mode: 0o644, size: Int64(metaGenerator.utf8.count), layer: 0))]
        c.captured[p] = Array(metaGenerator.utf8)
        return MergedView.assemble([c])
    }

    @Test func sameFilesShareDifferentFilesDoNot() throws {
        let dir = try tempDir()
        try FileManager.default.createDirectory(atPath: dir + "/dist", withIntermediateDirectories: true)
        try Data(#"<script src="/app.js"></script>"#.utf8).write(to: URL(fileURLWithPath: dir + "/dist/index.html"))
        try Data("console.log(1)".utf8).write(to: URL(fileURLWithPath: dir + "/dist/app.js"))
        try SampleImage.write(to: dir + "/base.tar", format: .ociArchive)
        var s = settings("oci-archive:\(dir)/base.tar", dir + "/out.tar")
        s.assets = dir + "/dist"
        s.noHealthcheck = true
        let plan = try StampPlan.resolve(s, environment: [:], gitRevision: { nil })
        let image = try ImageReader.open(plan.base).images[0]
        var shared = Stamper.SharedAssets()
        func meta(_ v: MergedView) throws -> String? {
            let entries = try Stamper.stampEntries(
                plan, baseName: nil, baseDigest: "sha256:" + String(repeating: "0", count: 64), image: image,
                view: v, shared: &shared, diagnostics: .silent)
            guard case .bytes(let b)? = entries.first(where: { $0.path.hasSuffix("MetaGenerator.js") })?.content else {
                return nil
            }
            return String(decoding: b, as: UTF8.self)
        }
        let a = try meta(view(#"module.exports = '<script src="/app.js">'"#))
        let b = try meta(view(#"module.exports = '<script src="/app.js" defer>'"#))
        let a2 = try meta(view(#"module.exports = '<script src="/app.js">'"#))
        #expect(a?.contains("/app.") == true && a?.contains("/app.js") == false, "\(a ?? "nil")")
        #expect(b?.contains(" defer") == true && b?.contains("/app.js") == false, "\(b ?? "nil")")
        #expect(a2 == a)
    }
}
