import IO
import OCI

/// What a file of a frontend is to stamp before anything is proven about its references.
enum Role: Equatable {
    /// Fetched by a fixed URL (a page, a favicon, a sitemap, a service worker, …) or named by
    /// `--keep`: keeps its name, its references are rewritten.
    case fixed(String)
    /// Read by a server or a tool, not by the browser (templates, `package.json`): keeps its name
    /// and its bytes; a name found in it keeps that name too.
    case verbatim(String)
    /// Already named after its content by the bundler (`index-BjL3nRWm.js`,
    /// `12.abcdef0123456789.js`): keeps its name while its bytes stay as they are.
    case bundler
    /// May be renamed, once every use of its name is proven rewritten.
    case candidate
}

enum Policy {
    /// Fixed-URL files, by glob: documents and files other clients (crawlers, browsers' icon
    /// requests, doc tools, feed readers, servers) ask for by name.
    static let fixed: [(Glob, String)] = [
        ("*.html", "a page"), ("*.htm", "a page"), ("*.xhtml", "a page"),
        ("manifest.json", "web app manifest"), ("*.webmanifest", "web app manifest"),
        ("favicon*", "favicon"), ("apple-touch-icon*", "touch icon"), ("android-chrome-*", "touch icon"),
        ("mstile-*", "tile icon"), ("safari-pinned-tab.svg", "pinned-tab icon"),
        ("browserconfig.xml", "browser config"),
        ("robots.txt", "fetched by crawlers"), ("sitemap*.xml", "sitemap"), ("sitemap*.xml.gz", "sitemap"),
        ("*.xml", "XML document"),
        ("feed.*", "feed"), ("rss.*", "feed"), ("atom.*", "feed"), ("*.rss", "feed"), ("*.atom", "feed"),
        ("objects.inv", "Sphinx inventory"), ("llms.txt", "fetched by name"), ("llms-full.txt", "fetched by name"),
        ("ads.txt", "fetched by name"), ("app-ads.txt", "fetched by name"), ("humans.txt", "fetched by name"),
        ("security.txt", "fetched by name"), (".well-known/**", "well-known URI"),
        ("sw.js", "service worker"), ("service-worker.js", "service worker"), ("serviceworker.js", "service worker"),
        ("*-sw.js", "service worker"), ("**/service-workers/**", "service worker"),
        ("version.json", "read by clients"), ("asset-manifest.json", "read by the server"),
        (".vite/**", "read by the server"),
        ("_redirects", "host config"), ("_headers", "host config"), ("CNAME", "host config"),
        (".nojekyll", "host config"),
    ].map { (Glob($0.0), $0.1) }

    /// Files read as they are by a server or tool: never rewritten.
    static let verbatim: [(Glob, String)] = [
        ("*.j2", "server template"), ("*.jinja", "server template"), ("*.jinja2", "server template"),
        ("*.ejs", "server template"),
        ("*.hbs", "server template"), ("*.handlebars", "server template"), ("*.mustache", "server template"),
        ("*.njk", "server template"), ("*.twig", "server template"), ("*.liquid", "server template"),
        ("*.tmpl", "server template"),
        ("*.tpl", "server template"), ("package.json", "read by the app"),
    ].map { (Glob($0.0), $0.1) }

    /// The globs above by what they need: a whole base name, an extension (`*.ext`), or a
    /// real match (most files are decided by two dictionary look-ups).
    private struct Index {
        var names: [String: String] = [:], extensions: [String: String] = [:], globs: [(Glob, String)] = []
        init(_ list: [(Glob, String)]) {
            for (g, why) in list {
                let p = g.pattern
                let wild = p.contains { "*?[/".contains($0) }
                if !wild {
                    names[p] = names[p] ?? why
                    continue
                }
                if p.hasPrefix("*."), !p.dropFirst(2).contains(where: { "*?[/.".contains($0) }) {
                    extensions[String(p.dropFirst(2))] = extensions[String(p.dropFirst(2))] ?? why
                    continue
                }
                globs.append((g, why))
            }
        }
        /// The reason of the first glob of the list that matches (names and extensions first:
        /// the lists have no pattern that a later one of another kind would contradict).
        func match(_ path: String, base: String, bytes: ArraySlice<UInt8>) -> String? {
            if let why = names[base] { return why }
            if let why = extensions[ext(base)] { return why }
            // A glob of a base name that starts with a letter cannot match a name that does not.
            let first = base.utf8.first
            return globs.first { g in
                if let f = g.0.pattern.utf8.first, !g.0.pattern.utf8.contains(0x2F), f != 0x2A, f != 0x3F, f != 0x5B,
                    f != first
                {
                    return false
                }
                return g.0.matches(bytes: bytes)
            }?.1
        }
    }
    private static let fixedIndex = Index(fixed), verbatimIndex = Index(verbatim)

    static func role(_ path: String, keep: [Glob], stampHashed: Bool) -> Role {
        let bytes = Array(path.utf8)[...]
        let base = Path.basename(path)
        if let why = verbatimIndex.match(path, base: base, bytes: bytes) { return .verbatim(why) }
        if stampHashed { return .candidate }
        if keep.contains(where: { $0.matches(bytes: bytes) }) { return .fixed("--keep") }
        if let why = fixedIndex.match(path, base: base, bytes: bytes) { return .fixed(why) }
        if ext(path).isEmpty { return .fixed("no extension") }
        if AssetKind.of(path) == .text { return .fixed("text read by name") }
        if Fingerprint.of(path) != nil { return .bundler }
        return .candidate
    }
}

/// Hashes that bundlers put in names: Vite/Rollup `name-[hash]` (8 characters of base64url, a
/// digit appended when two chunks would clash), webpack/CRA/Angular/Parcel hex of 8 to 32
/// (`main.3f9a1c0b.js`, `12.abcdef0123456789.js`, `b2970adce8797051.woff2`), esbuild's
/// `chunk-ABCD2345`. A run of decimal digits (a date, a version) is not a hash.
public enum Fingerprint {
    /// The hash part of a file's name, if it has one.
    public static func of(_ path: String) -> Substring? {
        let base = Substring(Path.basename(path))
        guard let lastDot = base.lastIndex(of: "."), lastDot != base.startIndex else { return nil }
        let stem = base[..<lastDot]
        if isHex(stem) { return stem }  // webpack's `[contenthash].woff2`
        // After each separator, the part up to the next dot: `main.3f9a1c0b.min` → `3f9a1c0b`,
        // `AltairPlot-Bu-jdMIA` → `Bu-jdMIA` (base64url holds `-` and `_` itself).
        for i in stem.indices where stem[i] == "-" || stem[i] == "." || stem[i] == "_" {
            let head = stem[stem.index(after: i)...].prefix { $0 != "." }
            if isHex(head) || isBase64URLHash(head) { return head }
        }
        return nil
    }

    /// Hex of 8 to 64 digits with at least one letter (an all-decimal run is a date or number).
    static func isHex(_ s: Substring) -> Bool {
        (8...64).contains(s.utf8.count) && s.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
            && s.utf8.contains { (97...102).contains($0) } && s.utf8.contains { (48...57).contains($0) }
    }

    /// Rollup's 8 characters of base64url (and a digit or two that Rollup appends on a clash),
    /// mixing cases or letters and digits the way a hash does and a word does not; esbuild's
    /// 8 upper-case base32 characters.
    static func isBase64URLHash(_ s: Substring) -> Bool {
        let u = Array(s.utf8)
        guard (8...10).contains(u.count) else { return false }
        let hash = u.prefix(8)
        guard u.dropFirst(8).allSatisfy({ (48...57).contains($0) }) else { return false }
        guard
            hash.allSatisfy({
                (48...57).contains($0) || (65...90).contains($0) || (97...122).contains($0) || $0 == 0x2D || $0 == 0x5F
            })
        else { return false }
        let upper = hash.contains { (65...90).contains($0) }, lower = hash.contains { (97...122).contains($0) }
        let digits = hash.filter { (48...57).contains($0) }.count
        let separators = hash.contains { $0 == 0x2D || $0 == 0x5F }
        if upper {
            // `SemiBold`, `DemiBold`: capitalised words, as font weights are; a hash's capitals
            // rarely start syllables (`BkDuYnFs`, `DoNndRsn`).
            return digits > 0 || separators || !isCapitalisedWords(hash)
        }
        // Lower case only: a word unless digits (or base64url's `-`/`_` with one) say otherwise.
        return lower && (digits >= 2 || (digits == 1 && separators))
    }

    /// `([A-Z][a-z]+)+` with every word of three letters or more and a vowel.
    private static func isCapitalisedWords(_ u: ArraySlice<UInt8>) -> Bool {
        var i = u.startIndex
        while i < u.endIndex {
            guard (65...90).contains(u[i]) else { return false }
            var vowel = "AEIOUY".utf8.contains(u[i])
            i += 1
            let start = i
            while i < u.endIndex, (97...122).contains(u[i]) {
                vowel = vowel || "aeiouy".utf8.contains(u[i])
                i += 1
            }
            if i - start < 2 || !vowel { return false }
        }
        return true
    }
}
