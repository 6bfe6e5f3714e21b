import Foundation
import Testing
import Hashing
@testable import Assets

/// The eleven ways `assets hash` broke real built frontends (issue: "never break a real
/// frontend"), each reduced to its smallest input, with the exact names and bytes that come out.
@Suite struct RealFrontendCasesTests {
    func h(_ text: String) -> String { String(Digester.hex(Array(text.utf8)).prefix(8)) }
    func manifest(_ r: AssetResult) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(try r.manifestBytes())) as? [String: Any])["files"]
            as! [String: Any]
    }
    func entry(_ r: AssetResult, _ original: String) throws -> [String: Any] {
        try manifest(r)[original] as! [String: Any]
    }

    /// 1. A webpack runtime builds chunk names from a map of their hashes: the chunk is already
    /// named after its content, and its name must not change (nor get a second hash).
    @Test func webpackChunkMapKeepsTheChunk() throws {
        let main = #"var u=e=>""+e+"."+{12:"abcdef0123456789"}[e]+".js";"#
        let r = try AssetHasher.hash(
            files([
                ("main.js", main), ("12.abcdef0123456789.js", "chunk"),
                ("index.html", #"<script src="main.js"></script>"#),
            ]))
        #expect(r.name("12.abcdef0123456789.js") == "12.abcdef0123456789.js")
        #expect(r.text("12.abcdef0123456789.js") == "chunk")
        #expect(r.name("main.js") == "main.\(h(main)).js" && r.text("main.js") == main)
        #expect(r.text("index.html") == #"<script src="main.\#(h(main)).js"></script>"#)
        let e = try entry(r, "12.abcdef0123456789.js")
        #expect(e["hash"] as? String == "bundler" && e["cache"] as? String == "immutable")
        #expect(r.kept["12.abcdef0123456789.js"]?.hasPrefix("named by its bundler") == true)
        #expect(AssetVerifier.verify(r.files).isEmpty, "\(AssetVerifier.verify(r.files))")
    }

    /// 2. Bare names that the browser resolves against the module are references; a name only a
    /// run-time expression uses (webpack's public path + a string) keeps its name.
    @Test func bareNamesAgainstTheModule() throws {
        let js =
            #"a=new URL("logo.svg", import.meta.url);b=new URL(`mcp.svg`, import.meta.url);new Worker(new URL("worker.js", import.meta.url));f=__webpack_require__.p + "b2970adce8797051.woff2";g=__webpack_require__.p + "font.woff2";w=new URL("./app.wasm",import.meta.url)"#
        let r = try AssetHasher.hash(
            files([
                ("assets/app.js", js), ("assets/logo.svg", "<svg/>"), ("assets/mcp.svg", "<svg>m</svg>"),
                ("assets/worker.js", "self.onmessage=1"), ("assets/b2970adce8797051.woff2", "F1"),
                ("assets/font.woff2", "F2"), ("assets/app.wasm", "WASM"),
                ("index.html", #"<script type="module" src="assets/app.js"></script>"#),
            ]))
        let out = js.replacingOccurrences(of: "\"logo.svg\"", with: "\"logo.\(h("<svg/>")).svg\"")
            .replacingOccurrences(of: "`mcp.svg`", with: "`mcp.\(h("<svg>m</svg>")).svg`")
            .replacingOccurrences(of: "\"worker.js\"", with: "\"worker.\(h("self.onmessage=1")).js\"")
            .replacingOccurrences(of: "\"./app.wasm\"", with: "\"./app.\(h("WASM")).wasm\"")
        #expect(r.text("assets/app.js") == out)
        #expect(r.name("assets/app.js") == "assets/app.\(h(out)).js")
        #expect(r.name("assets/b2970adce8797051.woff2") == "assets/b2970adce8797051.woff2")
        #expect(r.name("assets/font.woff2") == "assets/font.woff2")
        let at =
            js.utf8.count - String(js[js.range(of: "\"font.woff2\"")!.upperBound...]).utf8.count - "font.woff2\"".count
        #expect(
            r.kept["assets/font.woff2"]
                == "\"font.woff2\" is in assets/app.js, where stamp cannot rewrite it (assets/app.js at byte \(at))")
        #expect(AssetVerifier.verify(r.files).isEmpty, "\(AssetVerifier.verify(r.files))")
    }

    /// 3. Quoted relative paths in a nested script are resolved by the page that runs it.
    @Test func pageRelativeStringsInANestedScript() throws {
        let js = "var css=`./assets/index.css`;var i=\"./favicon.png\";var x=\"./img/x.png\";"
        let r = try AssetHasher.hash(
            files([
                ("index.html", #"<script type="module" src="assets/index.js"></script>"#),
                ("assets/index.js", js), ("assets/index.css", "a{}"), ("favicon.png", "P"),
                ("img/x.png", "X"), ("lib/orphan.js", "y=\"./x2.png\""), ("x2.png", "X2"),
            ]))
        let css = "assets/index.\(h("a{}")).css"
        let out = js.replacingOccurrences(of: "./assets/index.css", with: "./\(css)").replacingOccurrences(
            of: "./img/x.png", with: "./img/x.\(h("X")).png")
        #expect(r.name("assets/index.css") == css)
        #expect(r.text("assets/index.js") == out)
        #expect(r.name("favicon.png") == "favicon.png")
        // No page loads lib/orphan.js: "./x2.png" may mean lib/x2.png or x2.png; the file keeps its name.
        #expect(r.name("x2.png") == "x2.png" && r.text("lib/orphan.js") == "y=\"./x2.png\"")
        #expect(AssetVerifier.verify(r.files).isEmpty, "\(AssetVerifier.verify(r.files))")
    }

    /// 4. Names built at run time keep theirs, as do names a script compares or rebuilds.
    @Test func namesBuiltAtRunTime() throws {
        let worker = "importScripts(`${base}/min/lunr.${lang}.min.js`);"
        let ui =
            #"if(el.src.substr(-9)==="minus.png"){el.src=el.src.slice(0,-9)+"plus.png"};s=`${rootPath}/static/js/x.js`"#
        let r = try AssetHasher.hash(
            files([
                ("search/worker.js", worker), ("search/min/lunr.de.min.js", "de"), ("search/min/lunr.fr.min.js", "fr"),
                ("ui.js", ui), ("minus.png", "-"), ("plus.png", "+"), ("static/js/x.js", "x"), ("other.js", "o"),
                ("index.html", #"<script src="other.js"></script><script src="ui.js"></script>"#),
            ]))
        for kept in [
            "search/min/lunr.de.min.js", "search/min/lunr.fr.min.js", "minus.png", "plus.png", "static/js/x.js",
        ] {
            #expect(r.name(kept) == kept, "\(kept)")
        }
        #expect(
            r.kept["search/min/lunr.de.min.js"]
                == "its name may be built at run time in search/worker.js (from \"lunr.\")")
        #expect(
            r.kept["minus.png"]?.hasPrefix("\"minus.png\" is in ui.js, where stamp cannot rewrite it (ui.js at byte ")
                == true)
        #expect(r.name("other.js") == "other.\(h("o")).js")
        #expect(r.text("ui.js") == ui && r.text("search/worker.js") == worker)
    }

    /// 4. A file nothing in the tree names is asked for by someone stamp cannot see (gradio's
    /// server sends its theme's font URLs): it keeps its name.
    @Test func unreferencedFilesKeepTheirNames() throws {
        let r = try AssetHasher.hash(
            files([
                ("static/fonts/SourceSansPro-Regular.woff2", "F"), ("static/img/used.png", "U"),
                ("index.html", #"<img src="static/img/used.png">"#),
            ]))
        #expect(r.name("static/fonts/SourceSansPro-Regular.woff2") == "static/fonts/SourceSansPro-Regular.woff2")
        #expect(
            r.kept["static/fonts/SourceSansPro-Regular.woff2"]
                == "no file here refers to it (what asks for it uses this name)")
        #expect(r.name("static/img/used.png") == "static/img/used.\(h("U")).png")
        let e = try entry(r, "static/fonts/SourceSansPro-Regular.woff2")
        #expect(e["cache"] as? String == "revalidate")
    }

    /// A name in a sentence of a library's documentation is not a use of the file; a template
    /// literal with markup before a `new URL(…)` does not hide it (quotes paired again).
    @Test func sentencesAndMarkupInScripts() throws {
        let js =
            #"var doc="Supports quoted labels and bare labels (index.js) in a tree";var h=`<b>${x}</b>`;var u=``+new URL(`mcp.svg`,import.meta.url).href;"#
        let r = try AssetHasher.hash(
            files([
                ("lib.js", js), ("index.js", "I"), ("mcp.svg", "<svg/>"),
                ("index.html", #"<script src="index.js"></script><script src="lib.js"></script>"#),
            ]))
        #expect(r.name("index.js") == "index.\(h("I")).js")
        #expect(r.text("lib.js") == js.replacingOccurrences(of: "`mcp.svg`", with: "`mcp.\(h("<svg/>")).svg`"))
    }

    /// 5. Files other clients fetch by a fixed URL, and files a server reads, keep their names;
    /// server templates and package.json keep their bytes too.
    @Test func fixedNamesAreKept() throws {
        let fixed = [
            "sitemap.xml", "sitemap.xml.gz", "objects.inv", "favicon.png", "apple-touch-icon.png", "browserconfig.xml",
            "feed.xml", "llms.txt", "ads.txt", "robots.txt", ".well-known/security.txt", "site.webmanifest", "sw.js",
        ]
        let j2 = #"<script src="/app.js"></script>"#, pkg = #"{"name":"x","main":"server.js"}"#
        let r = try AssetHasher.hash(
            files(
                fixed.map { ($0, "data") } + [
                    ("templates/index.j2", j2), ("package.json", pkg),
                    ("app.js", "a"), ("server.js", "s"), ("page.js", "p"),
                    ("index.html", #"<script src="page.js"></script>"#),
                ]))
        for f in fixed { #expect(r.name(f) == f, "\(f)") }
        #expect(r.name("templates/index.j2") == "templates/index.j2" && r.text("templates/index.j2") == j2)
        #expect(r.name("package.json") == "package.json" && r.text("package.json") == pkg)
        // Named in files stamp does not rewrite: kept.
        #expect(r.name("app.js") == "app.js" && r.name("server.js") == "server.js")
        #expect(r.name("page.js") == "page.\(h("p")).js")
        let e = try entry(r, "favicon.png")
        #expect(e["cache"] as? String == "revalidate" && e["kept"] as? String == "favicon")
    }

    /// 6. Strings in a bundle that are not URLs (module-map keys, `require` ids) are not
    /// reported by verify, and a file named only there keeps its name.
    @Test func moduleIdsAreNotURLs() throws {
        let bundle = #"var n={"./auth/actions.js":1};require("./sync.js");import("./lazy.js")"#
        let r = try AssetHasher.hash(
            files([
                ("index.html", #"<script src="b.js"></script>"#), ("b.js", bundle),
                ("auth/actions.js", "A"), ("lazy.js", "L"),
            ]))
        #expect(r.name("auth/actions.js") == "auth/actions.js")
        #expect(r.name("lazy.js") == "lazy.\(h("L")).js")
        #expect(r.text("b.js") == bundle.replacingOccurrences(of: "./lazy.js", with: "./lazy.\(h("L")).js"))
        #expect(AssetVerifier.verify(r.files).isEmpty, "\(AssetVerifier.verify(r.files))")
    }

    /// 6. …and verify fails outputs broken as in cases 2, 3 and 10: an old name left in place.
    @Test(arguments: [
        ("a.js", #"new URL("logo.svg", import.meta.url)"#, "logo.svg"),
        ("a.js", "var css=`./index.css`", "index.css"),
        ("index.html", #"<img src="My Logo (1).svg">"#, "My Logo (1).svg"),
    ])
    func verifyFailsABrokenOutput(_ file: String, _ text: String, _ target: String) throws {
        var input = [(file, text), (target, "T")]
        if file != "index.html" { input.append(("index.html", #"<script src="a.js"></script>"#)) }
        let r = try AssetHasher.hash(files(input))
        #expect(r.name(target) != target)
        #expect(AssetVerifier.verify(r.files).isEmpty, "\(AssetVerifier.verify(r.files))")
        // The reference put back to the old name: the page would ask for a file that is gone.
        var broken = r.files
        let i = broken.firstIndex { $0.path == r.name(file) }!
        broken[i].bytes = Array(text.utf8)
        let findings = AssetVerifier.verify(broken).map(\.message)
        #expect(findings.contains { $0.hasPrefix("\(r.name(file)): still names \(target) at byte") }, "\(findings)")
    }

    /// 7. create-react-app's asset-manifest.json is the app's file: kept and rewritten in
    /// place; stamp's manifest has a name of its own.
    @Test func craManifestIsRewrittenNotReplaced() throws {
        let cra =
            #"{"files":{"main.js":"/static/js/main.3f9a1c0b.js","logo":"/static/media/logo.svg"},"entrypoints":["static/js/main.3f9a1c0b.js"]}"#
        let r = try AssetHasher.hash(
            files([
                ("asset-manifest.json", cra), ("static/js/main.3f9a1c0b.js", "M"), ("static/media/logo.svg", "<svg/>"),
            ]))
        #expect(
            r.text("asset-manifest.json")
                == cra.replacingOccurrences(of: "media/logo.svg", with: "media/logo.\(h("<svg/>")).svg"))
        #expect(r.files.contains { $0.path == "stamp-assets.json" })
        #expect(r.name("static/js/main.3f9a1c0b.js") == "static/js/main.3f9a1c0b.js")
    }

    /// 9. A date in a name is not a hash: two reports are two files.
    @Test func datesAreNotHashes() throws {
        let r = try AssetHasher.hash(
            files([
                ("report.20240101.css", "a{}"), ("report.20231231.css", "b{}"),
                ("index.html", #"<link href="report.20240101.css"><link href="report.20231231.css">"#),
            ]))
        #expect(r.name("report.20240101.css") == "report.20240101.\(h("a{}")).css")
        #expect(r.name("report.20231231.css") == "report.20231231.\(h("b{}")).css")
        #expect(try AssetHasher.hash(r.files).renames.allSatisfy { $0.key == $0.value })
    }

    /// 10. A literal space in a quoted attribute (valid HTML) is rewritten like `%20`.
    @Test func spacesInNames() throws {
        let r = try AssetHasher.hash(
            files([
                ("index.html", #"<img src="img/My Logo (1).svg"><img src="img/My%20Logo%20(1).svg">"#),
                ("img/My Logo (1).svg", "<svg/>"),
            ]))
        let n = "My Logo (1).\(h("<svg/>")).svg"
        #expect(r.text("index.html") == #"<img src="img/\#(n)"><img src="img/My%20Logo%20(1).\#(h("<svg/>")).svg">"#)
    }

    /// 11. Vite's backend manifest is rewritten in place; Workbox's AMD module ids keep their
    /// targets; a JS object key that equals a path keeps the file's name (a lookup by it works).
    @Test func viteManifestWorkboxAndObjectKeys() throws {
        let vite = #"{"index.html":{"file":"assets/index-BjL3nRWm.js","assets":["assets/logo.svg"]}}"#
        let sw = "define(['./workbox-5ffe50d4'],function(w){w.precache([])});"
        let keys = #"var m={"assets/app.js":1};load(m["assets/app.js"])"#
        let r = try AssetHasher.hash(
            files([
                (".vite/manifest.json", vite), ("assets/index-BjL3nRWm.js", "I"), ("assets/logo.svg", "<svg/>"),
                ("sw.js", sw), ("workbox-5ffe50d4.js", "W"), ("keys.js", keys), ("assets/app.js", "P"),
            ]))
        #expect(
            r.text(".vite/manifest.json")
                == vite.replacingOccurrences(of: "assets/logo.svg", with: "assets/logo.\(h("<svg/>")).svg"))
        #expect(r.name("assets/index-BjL3nRWm.js") == "assets/index-BjL3nRWm.js")
        #expect(r.name("workbox-5ffe50d4.js") == "workbox-5ffe50d4.js" && r.text("sw.js") == sw)
        #expect(r.name("assets/app.js") == "assets/app.js" && r.text("keys.js") == keys)
    }

    /// Bundler-named files whose bytes change (they import a file stamp renames) get stamp's
    /// hash too, and the cycle with the entry is hashed as a group: anything-llm's shape.
    @Test func viteChunksImportingTheEntry() throws {
        let r = try AssetHasher.hash(
            files([
                ("index.js", "import('./assets/page-BjL3nRWm.js')"),
                ("assets/page-BjL3nRWm.js", "import '../index.js'"),
                ("assets/other-Ck4mPq9Z.js", "export const o=1"),
                ("_index.html", #"<script src="/index.js"></script>"#),
            ]))
        #expect(r.name("index.js").hasPrefix("index.") && r.name("index.js") != "index.js")
        #expect(
            r.name("assets/page-BjL3nRWm.js").hasPrefix("assets/page-BjL3nRWm.")
                && r.name("assets/page-BjL3nRWm.js").count == "assets/page-BjL3nRWm.js".count + 9)
        #expect(r.name("assets/other-Ck4mPq9Z.js") == "assets/other-Ck4mPq9Z.js")
        #expect(AssetVerifier.verify(r.files).isEmpty, "\(AssetVerifier.verify(r.files))")
        #expect(try AssetHasher.hash(r.files).files == r.files)
    }

    @Test(arguments: [
        ("index-BjL3nRWm.js", "BjL3nRWm"), ("AltairPlot-Bu-jdMIA.js", "Bu-jdMIA"), ("Index-Akn07EZk2.js", "Akn07EZk2"),
        ("main.3f9a1c0b.js", "3f9a1c0b"), ("12.abcdef0123456789.js", "abcdef0123456789"),
        ("b2970adce8797051.woff2", "b2970adce8797051"),
        ("bundle.a5f9d56c.min.js", "a5f9d56c"), ("chunk-5QXTLRVB.js", "5QXTLRVB"), ("workbox-5ffe50d4.js", "5ffe50d4"),
        ("KHR_animation_pointer-BkDuYnFs.js", "BkDuYnFs"), ("flowGraphBinaryOperationBlock-DoNndRsn.js", "DoNndRsn"),
        ("shadowMap.fragment-v2-atneh.js", "v2-atneh"),
        ("postProcessRenderPipelineManagerSceneComponent-CYCNTPEO.js", "CYCNTPEO"),
    ])
    func bundlerHashesAreRecognised(_ name: String, _ hash: String) {
        #expect(Fingerprint.of(name).map(String.init) == hash)
    }

    @Test(arguments: [
        "report.20240101.css", "Inter-SemiBold.woff2", "lunr.stemmer.support.js", "jquery-3.6.0.min.js",
        "sphinx_highlight.js", "swagger-ui-bundle.js", "fontawesome-webfont.woff2", "index.js", "deadbeef.js",
        "book-chapter1.js", "Roboto-DemiBold.ttf", "select2-zh-TW.js",
    ])
    func wordsAndDatesAreNotHashes(_ name: String) {
        #expect(Fingerprint.of(name) == nil)
    }
}
