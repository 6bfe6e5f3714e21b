import Foundation
import Testing
import TestSupport
import Assets
import Hashing
@testable import StampCore

/// A generated Vite-shaped frontend with every reference form: a cycle (the entry and a lazy
/// chunk import each other), nested folders, names with spaces and parentheses, query strings
/// and fragments, a source map, Vite's preload list, a web manifest, and URLs that must be left
/// alone.
enum ViteTree {
    static func files(utilBody: String = "export const u = 1;") -> [AssetFile] {
        let text: [(String, String)] = [
            (
                "index.html",
                """
                <!doctype html><html><head>
                <link rel="stylesheet" href="/index.css"><link rel="modulepreload" href="/assets/vendor-1a2b3c4d.js">
                <link rel="icon" href="/favicon.ico"><link rel="manifest" href="/manifest.webmanifest">
                <link rel="preload" as="font" href="/fonts/Inter%20(Regular).woff2" crossorigin>
                </head><body><img srcset="img/hero.png 1x, img/hero@2x.png 2x" src="img/hero.png">
                <video poster="/img/poster.jpg"></video><a href="https://example.com/x.png">x</a>
                <script type="module" src="/index.js"></script></body></html>
                """
            ),
            (
                "index.js",
                """
                import { v } from "./assets/vendor-1a2b3c4d.js";
                const __vite__mapDeps=(i,m=__vite__mapDeps,d=(m.f||(m.f=["assets/page-9f8e7d6c.js","assets/page-9f8e7d6c.css"])))=>i.map(i=>d[i]);
                const logo = new URL("./img/logo.svg", import.meta.url).href;
                fetch("/api/ping");
                import("./assets/page-9f8e7d6c.js").then((m) => { document.body.dataset.loaded = m.page + v + (logo ? "" : "!"); });
                //# sourceMappingURL=index.js.map
                """
            ),
            ("index.js.map", #"{"version":3,"file":"index.js","sources":["../src/main.ts"],"mappings":""}"#),
            ("assets/vendor-1a2b3c4d.js", "export const v = '-vendor';"),
            (
                "assets/page-9f8e7d6c.js",
                "import '../index.js';import { u } from './deep/util-11111111.js';export const page = 'page' + u;"
            ),
            ("assets/deep/util-11111111.js", "UTIL"),
            ("assets/page-9f8e7d6c.css", "h1{background:url(../img/bg.png)}"),
            (
                "index.css",
                """
                @import "./assets/page-9f8e7d6c.css";
                @font-face{font-family:Inter;src:url("fonts/Inter%20(Regular).woff2?v=3#iefix") format("woff2")}
                body{background:url('/img/bg.png')} i{background:url(data:image/png;base64,AAAA)} b{background:url(https://cdn.example/b.png)}
                """
            ),
            (
                "manifest.webmanifest",
                #"{"name":"AnythingLLM","icons":[{"src":"/img/icon-192.png","sizes":"192x192"}]}"#
            ),
            ("robots.txt", "User-agent: *\n"),
        ]
        var out = text.map {
            AssetFile(path: $0.0, bytes: Array(($0.0 == "assets/deep/util-11111111.js" ? utilBody : $0.1).utf8))
        }
        for (i, p) in [
            "img/hero.png", "img/hero@2x.png", "img/poster.jpg", "img/logo.svg", "img/bg.png", "img/icon-192.png",
            "fonts/Inter (Regular).woff2", "favicon.ico",
        ].enumerated() {
            out.append(AssetFile(path: p, bytes: Array("binary \(i)".utf8)))
        }
        return out
    }
}

@Suite struct ViteTreeTests {
    @Test func everyReferenceResolvesAfterHashing() throws {
        let r = try AssetHasher.hash(ViteTree.files())
        #expect(AssetVerifier.verify(r.files).isEmpty, "\(AssetVerifier.verify(r.files))")
        let html = String(decoding: r.files.first { $0.path == "index.html" }!.bytes, as: UTF8.self)
        for original in [
            "index.css", "assets/vendor-1a2b3c4d.js", "index.js", "img/hero.png", "img/hero@2x.png", "img/poster.jpg",
        ] {
            #expect(html.contains(r.renames[original]!), "\(original) not rewritten in index.html")
        }
        #expect(html.contains("fonts/Inter%20(Regular)."))
        #expect(html.contains("https://example.com/x.png"))
        let js = String(decoding: r.files.first { $0.path == r.renames["index.js"] }!.bytes, as: UTF8.self)
        #expect(js.contains("fetch(\"/api/ping\")"))
        #expect(js.contains("\"\(r.renames["assets/page-9f8e7d6c.js"]!)\""))  // Vite's preload list, root-relative
        let css = String(decoding: r.files.first { $0.path == r.renames["index.css"] }!.bytes, as: UTF8.self)
        #expect(
            css.contains("?v=3#iefix") && css.contains("data:image/png;base64,AAAA")
                && css.contains("https://cdn.example/b.png"))
    }

    /// Changing one deep file renames exactly the files that reference it, directly or through
    /// others (here the chunk that imports it, and the entry and its source map, which are in a
    /// cycle with that chunk) — and nothing else.
    @Test func aDeepChangeRenamesExactlyItsReferrers() throws {
        let one = try AssetHasher.hash(ViteTree.files())
        let two = try AssetHasher.hash(ViteTree.files(utilBody: "export const u = 2;"))
        let renamed = Set(one.renames.keys.filter { one.renames[$0] != two.renames[$0] })
        #expect(renamed == ["assets/deep/util-11111111.js", "assets/page-9f8e7d6c.js", "index.js", "index.js.map"])
        #expect(one.renames["index.html"] == "index.html")
    }

    @Test func hashingTwiceIsANoOp() throws {
        let once = try AssetHasher.hash(ViteTree.files())
        #expect(try AssetHasher.hash(once.files).files == once.files)
    }

    @Test func verifyCatchesAFlippedByteAndADanglingReference() throws {
        var f = try AssetHasher.hash(ViteTree.files()).files
        let font = f.firstIndex { $0.path.hasPrefix("fonts/Inter (Regular).") }!
        f[font].bytes[0] ^= 1
        let findings = AssetVerifier.verify(f).map(\.message)
        #expect(findings.contains { $0.hasPrefix(f[font].path + ": name does not match its content") })
        f.removeAll { $0.path.hasPrefix("img/poster.") }
        #expect(
            AssetVerifier.verify(f).map(\.message).contains {
                $0.hasPrefix("index.html: reference \"/img/poster.jpg\"") == false
                    && $0.hasPrefix("index.html: reference")
            })
    }

    /// The hashed page in a real browser: headless Chromium loads it from a loopback server, runs
    /// the module graph (the lazy chunk sets a marker), and the server saw no 404.
    @Test func chromiumLoadsTheHashedPageWithoutA404() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/chromium") else {
            Issue.record("chromium is not installed (make deps installs Debian's chromium)")
            return
        }
        let dir = try tempDir()
        let r = try AssetHasher.hash(ViteTree.files())
        try AssetTree.write(r.files, to: dir + "/site")
        let log = dir + "/server.log"
        let server = try spawn(
            ["python3", "-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory", dir + "/site"],
            stdout: log, stderr: log)
        defer {
            kill(server, SIGTERM)
            _ = exitStatus(server)
        }
        var port = 0
        for _ in 0..<100 where port == 0 {
            usleep(50_000)
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            if let r = text.range(of: "port ") { port = Int(text[r.upperBound...].prefix { $0.isNumber }) ?? 0 }
        }
        #expect(port > 0)
        let page = try run([
            "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--user-data-dir=\(dir)/profile",
            "--virtual-time-budget=5000", "--dump-dom", "http://127.0.0.1:\(port)/index.html",
        ])
        #expect(
            page.out.contains("data-loaded=\"page1-vendor\""), "the module graph did not run: \(page.out.prefix(400))")
        let requests = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n").filter {
            $0.contains("\"GET ")
        }
        #expect(requests.count >= 8, "\(requests)")
        // The app's API is not served here; that its path went out unchanged is the point.
        #expect(requests.contains { $0.contains("GET /api/ping ") })
        let missing = requests.filter { $0.contains("\" 404 ") && !$0.contains("GET /api/") }
        #expect(missing.isEmpty, "404s: \(missing)")
    }
}
