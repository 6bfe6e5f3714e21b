import IO
import OCI

/// How a file's text is searched for references to other files.
public enum AssetKind: Sendable {
    /// HTML and the XML family (SVG): attributes, inline scripts and styles.
    case html, css, javascript
    /// JSON data, source maps, web app manifests.
    case json
    /// Text stamp never rewrites (server templates, `.txt`, files without an extension): only
    /// searched for names, which then keep theirs.
    case text
    case binary

    public static func of(_ path: String) -> AssetKind {
        let e = ext(path).lowercased()
        switch e {
        case "html", "htm", "svg", "xml", "xhtml": return .html
        case "css": return .css
        case "js", "mjs", "cjs": return .javascript
        case "json", "map", "webmanifest": return .json
        case "": return .text
        default: return textExtensions.contains(e) ? .text : .binary
        }
    }

    static let textExtensions: Set<String> = [
        "txt", "md", "rst", "csv", "tsv", "yaml", "yml", "toml", "ini", "conf", "j2", "jinja", "jinja2", "ejs", "hbs",
        "handlebars", "mustache", "njk", "twig", "liquid", "tmpl", "tpl", "py", "rb", "php", "ts", "jsx", "tsx", "vue",
        "svelte",
        "less", "scss", "sass", "appcache", "vtt", "srt", "rss", "atom", "xsl", "xslt",
    ]
}

/// One reference found in a file: the bytes of its path (without quotes, query or fragment)
/// and the file of the tree it resolves to.
public struct Reference: Sendable, Equatable {
    /// How the browser uses the token.
    public enum Context: Sendable, Equatable {
        /// Fetched as a URL: an HTML attribute such as `src`/`href`, CSS `url()` and `@import`,
        /// a JS `import`, `new URL(…, import.meta.url)`, `importScripts`, a worker, `fetch`,
        /// `sourceMappingURL`. One that resolves to nothing is a broken link.
        case url
        /// A quoted path in a script or in data, used in ways stamp cannot see.
        case string
    }

    /// Byte range of the path part of the token in the file.
    public var range: Range<Int>
    /// The token's path as written (percent-encoded, relative or root-absolute).
    public var written: String
    /// The path inside the asset root it resolves to, or nil when it resolves to nothing.
    public var target: String?
    public var context: Context = .string
    /// A quoted path in a script, resolved by the page that runs it: resolved again once the
    /// pages that load the script are known (`ReferenceScanner.pageDir`).
    var byPage = false
}

/// Finds references in HTML, CSS, JavaScript, JSON and source maps, the way the browser resolves
/// them:
///
/// - HTML attributes (`src`, `href`, `srcset`, `poster`, …) and other quoted paths in a page:
///   from the page's folder; CSS `url()` and `@import`: from the style sheet's folder.
/// - JS module specifiers (`import`, `import()`, `export … from`), `new URL(x, import.meta.url)`
///   and `importScripts(x)`: from the script's folder (a bare `logo.svg` too, where the browser
///   takes it as relative).
/// - Any other quoted relative path in a script (`"./favicon.png"`, `new Worker("w.js")`,
///   `fetch("data.json")`) is resolved by the page that runs the script: against the folder of
///   the pages that load it (`pageDir`), when stamp knows them, else against the script's folder
///   only where both readings agree. Two readings that name two different files resolve to
///   nothing: stamp does not guess.
/// - `require("x")` (a module id inside a bundle) and object keys (`{"./a.js": 1}`) are not URLs.
/// - JSON string values: from the file's folder, else from the asset root (Vite's
///   `.vite/manifest.json` lists paths from the root); keys are not paths.
///
/// URLs with a scheme, `//host` and `data:` are never touched.
public struct ReferenceScanner: Sendable {
    /// Every file of the tree, by path relative to the asset root.
    public let files: Set<String>
    /// Folder of the pages that load a script (script path → folder, "" for the root), when
    /// all the pages that load it are in one folder.
    public var pageDir: [String: String] = [:]

    public init(files: Set<String>) { self.files = files }

    /// References in `bytes` of the file at `path`. `outsideRoot` files (server code that writes
    /// HTML) only count root-absolute references.
    /// The longest path a reference may have: every scan looks at most this far ahead, so a
    /// file is scanned in linear time whatever it holds.
    static let maxToken = 2048

    private static let skipScript = ByteSkip([0x22, 0x27, 0x60, 0x3D])
    private static let skipMarkup = ByteSkip([0x22, 0x27, 0x60, 0x3D, 0x28])

    public func scan(_ bytes: [UInt8], path: String, kind: AssetKind, outsideRoot: Bool = false) -> [Reference] {
        guard kind != .binary, kind != .text else { return [] }
        var out: [Reference] = []
        var seen = Set<Int>()
        let dir = path.utf8.contains(0x2F) ? Path.dirname(path) : ""
        let page = pageDir[path]
        func consider(_ start: Int, _ end: Int, _ how: Resolution, _ context: Reference.Context) {
            guard start < end, !seen.contains(start) else { return }
            var pathEnd = start
            while pathEnd < end, bytes[pathEnd] != UInt8(ascii: "?"), bytes[pathEnd] != UInt8(ascii: "#") {
                pathEnd += 1
            }
            guard pathEnd > start else { return }
            // Leading and trailing blanks of an attribute value are not part of the URL.
            var s = start, e = pathEnd
            while s < e, bytes[s] == 0x20 { s += 1 }
            while e > s, bytes[e - 1] == 0x20 { e -= 1 }
            guard s < e, mayName(bytes, s, e) else { return }
            let written = String(decoding: bytes[s..<e], as: UTF8.self)
            let how = outsideRoot ? .rootOnly : how
            let target = resolve(written, dir: dir, page: page, how: how, kind: kind)
            // A script's path that the pages loading it may resolve: kept for `resolveAgain`.
            let pending: Bool
            if case .byPage = how, page == nil, target == nil, !written.utf8.contains(0x20) {
                pending = true
            } else {
                pending = false
            }
            if target == nil, !pending {
                // Unresolved: kept only when it looks like a link to a file (for `assets verify`).
                guard !written.utf8.contains(0x20), looksLikeAssetPath(written, outsideRoot: outsideRoot) else {
                    return
                }
            }
            seen.insert(start)
            var r = Reference(range: s..<e, written: written, target: target, context: context)
            if case .byPage = how { r.byPage = true }
            out.append(r)
        }

        // The loop below acts only at quotes, `=`, and in CSS and HTML at `(`.
        let skip = kind == .css || kind == .html ? Self.skipMarkup : Self.skipScript
        bytes.withUnsafeBufferPointer { b in
            let n = bytes.count
            var i = 0
            while true {
                i = skip.next(b, from: i)
                guard i < n else { break }
                let c = b[i]
                if c == 0x22 || c == 0x27 || c == 0x60 {  // " ' `
                    // srcset="a.png 1x, b.png 2x": candidates separated by commas.
                    if kind == .html,
                        isAttribute(bytes, before: i, named: "srcset")
                            || isAttribute(bytes, before: i, named: "imagesrcset")
                    {
                        // Bounded: a quote that never closes must not make every later one scan to the end.
                        if let close = bytes[(i + 1)..<min(n, i + 1 + Self.maxToken * 8)].firstIndex(of: c) {
                            var j = i + 1
                            while j < close {
                                while j < close, b[j] == 0x20 || b[j] == 0x2C || b[j] == 0x0A || b[j] == 0x09 { j += 1 }
                                let s = j
                                while j < close, b[j] != 0x20, b[j] != 0x0A, b[j] != 0x09, b[j] != 0x2C { j += 1 }
                                consider(s, j, .fromFile(bare: true), .url)
                                while j < close, b[j] != 0x2C { j += 1 }
                            }
                            i = close + 1
                            continue
                        }
                    }
                    var j = i + 1
                    let limit = min(n, i + Self.maxToken)
                    // Blanks are allowed inside quotes (`src="img/My Logo (1).svg"`); such a token
                    // counts only when it names a file.
                    while j < limit, isTokenByte(b[j]) || b[j] == 0x20 { j += 1 }
                    if j < limit, b[j] == c, j > i + 1 {
                        let before = out.count
                        // A path names a file with an extension: a token without a dot is passed
                        // over before its role (which reads the words around it) is looked up.
                        if UnsafeBufferPointer(rebasing: b[(i + 1)..<j]).contains(0x2E),
                            let (how, context) = quotedRole(bytes, open: i, close: j, kind: kind)
                        {
                            consider(i + 1, j, how, context)
                        }
                        // No path between these quotes: the second may open the next string
                        // (the first closed one that held other characters), so it is looked at
                        // again; a pairing gone wrong mends itself at the next quote.
                        i = out.count > before ? j + 1 : j
                        continue
                    }
                    i += 1
                    continue
                }
                if (kind == .css || kind == .html) && c == UInt8(ascii: "(") && i >= 3
                    && lower(b[i - 3]) == UInt8(ascii: "u")
                    && lower(b[i - 2]) == UInt8(ascii: "r") && lower(b[i - 1]) == UInt8(ascii: "l")
                {
                    var j = i + 1
                    while j < n, j < i + Self.maxToken, b[j] == 0x20 { j += 1 }
                    if j < n, b[j] != 0x22, b[j] != 0x27 {
                        // An unquoted url() holds no unescaped "(" and no URL is longer than a token.
                        let s = j, limit = min(n, j + Self.maxToken)
                        while j < limit, isTokenByte(b[j]), b[j] != UInt8(ascii: ")"), b[j] != UInt8(ascii: "(") {
                            j += 1
                        }
                        if j < limit || limit == n { consider(s, j, .fromFile(bare: true), .url) }
                    }
                    i += 1
                    continue
                }
                if c == UInt8(ascii: "=") {
                    // sourceMappingURL=x.map, and unquoted HTML attributes src=x.js.
                    /// The unquoted value after `=`, up to `stop`.
                    func value(until stop: UInt8, _ context: Reference.Context) {
                        var j = i + 1
                        let limit = min(n, j + Self.maxToken)
                        while j < limit, isTokenByte(b[j]), b[j] != stop { j += 1 }
                        if j < limit || limit == n { consider(i + 1, j, .fromFile(bare: true), context) }
                        i = j
                    }
                    if endsWith(bytes, at: i, "sourceMappingURL") {
                        // Fetched only by developer tools: a map that is missing breaks nothing.
                        value(until: UInt8(ascii: "*"), .string)
                        continue
                    }
                    if kind == .html, i + 1 < n, b[i + 1] != 0x22, b[i + 1] != 0x27,
                        ["src", "href", "poster"].contains(where: { endsWith(bytes, at: i, $0) })
                    {
                        value(until: UInt8(ascii: ">"), .url)
                        continue
                    }
                }
                i += 1
            }
        }
        return out.sorted { $0.range.lowerBound < $1.range.lowerBound }
    }

    /// The references of a script scanned before the pages that load it were known, with its
    /// quoted paths resolved again from `pageDir` (the rest is as scanned).
    func resolveAgain(_ refs: [Reference], path: String) -> [Reference] {
        guard refs.contains(where: \.byPage) else { return refs }
        let dir = path.utf8.contains(0x2F) ? Path.dirname(path) : ""
        return refs.compactMap { r in
            guard r.byPage else { return r }
            var r = r
            r.target = resolve(r.written, dir: dir, page: pageDir[path], how: .byPage, kind: .javascript)
            return r.target != nil || looksLikeAssetPath(r.written, outsideRoot: false) ? r : nil
        }
    }

    /// Whether the bytes of a token can name a file at all: the last part of a path has a dot
    /// (every file stamp renames has an extension). Most quoted strings of a script are words.
    private func mayName(_ b: [UInt8], _ s: Int, _ e: Int) -> Bool {
        var k = e - 1
        while k >= s, b[k] != 0x2F {
            if b[k] == 0x2E { return true }
            k -= 1
        }
        return false
    }

    /// How a token is resolved.
    enum Resolution {
        /// From the file's folder; `bare` names (`logo.svg`) too.
        case fromFile(bare: Bool)
        /// By the page that runs the script (a quoted path in a script).
        case byPage
        /// A JS module specifier: `./`, `../` and `/` only (a bare one names a package).
        case module
        /// JSON data: the file's folder, else the root.
        case data
        /// Server code outside the root: root-absolute paths only.
        case rootOnly
    }

    /// What a quoted token is, from the text around it; nil when it is no path at all.
    func quotedRole(_ b: [UInt8], open: Int, close: Int, kind: AssetKind) -> (Resolution, Reference.Context)? {
        switch kind {
        case .html:
            if let attr = attributeName(b, before: open) {
                return (.fromFile(bare: true), ReferenceScanner.urlAttributes.contains(attr) ? .url : .string)
            }
            return (.fromFile(bare: true), .string)
        case .css:
            return (.fromFile(bare: true), .url)
        case .json:
            return isObjectKey(b, open: open, close: close) ? nil : (.data, .string)
        case .javascript:
            if isObjectKey(b, open: open, close: close) { return nil }
            var k = open - 1
            while k >= 0, isBlank(b[k]) { k -= 1 }
            guard k >= 0 else { return (.byPage, .string) }
            if b[k] == UInt8(ascii: "(") {
                var w = k - 1
                while w >= 0, isBlank(b[w]) { w -= 1 }
                let word = wordBefore(b, end: w + 1)
                switch word {
                case "import": return (.module, .url)
                case "require": return nil
                case "importScripts": return (.fromFile(bare: true), .url)
                case "URL":
                    // new URL("x", import.meta.url): from the module; new URL("x", base): unknown.
                    var f = close + 1
                    while f < b.count, isBlank(b[f]) { f += 1 }
                    if f < b.count, b[f] == UInt8(ascii: ","),
                        startsWith(b, skippingBlanksFrom: f + 1, "import.meta.url")
                    {
                        return (.fromFile(bare: true), .url)
                    }
                    return (.byPage, .string)
                case "Worker", "SharedWorker", "register", "fetch": return (.byPage, .url)
                default: return (.byPage, .string)
                }
            }
            let word = wordBefore(b, end: k + 1)
            if word == "from" || word == "import" { return (.module, .url) }
            return (.byPage, .string)
        case .text, .binary:
            return nil
        }
    }

    /// The file a written path names, if the tree has it (exactly one file).
    func resolve(_ written: String, dir: String, page: String?, how: Resolution, kind: AssetKind) -> String? {
        guard isLocal(written) else { return nil }
        let decoded = percentDecode(written)
        if decoded.hasPrefix("/") { return existing(decoded) }
        let relative = decoded.hasPrefix("./") || decoded.hasPrefix("../")
        func join(_ d: String) -> String { d.isEmpty ? decoded : d + "/" + decoded }
        switch how {
        case .rootOnly:
            return nil
        case .fromFile(let bare):
            return relative || bare ? existing(join(dir)) : nil
        case .module:
            return relative ? existing(join(dir)) : nil
        case .data:
            return existing(join(dir)) ?? (relative ? nil : existing(decoded))
        case .byPage:
            // Vite's preload lists hold root-relative `assets/x.js`; other bare words are no paths.
            guard relative || decoded.utf8.contains(0x2F) else { return nil }
            var found = Set<String>()
            if let page { existing(join(page)).map { found.insert($0) } }
            if relative {
                existing(join(dir)).map { found.insert($0) }
            } else {
                existing(decoded).map { found.insert($0) }
            }
            return found.count == 1 ? found.first : nil
        }
    }

    private func existing(_ p: String) -> String? {
        guard let c = Path.clean(p), files.contains(c) else { return nil }
        return c
    }

    /// A path that should resolve (for `assets verify`): local, with a file extension of the web.
    func looksLikeAssetPath(_ written: String, outsideRoot: Bool) -> Bool {
        guard isLocal(written), !outsideRoot || written.hasPrefix("/") else { return false }
        let e = ext(written).lowercased()
        return ReferenceScanner.webExtensions.contains(e) && !written.hasSuffix("/")
    }

    static let webExtensions: Set<String> = [
        "js", "mjs", "css", "map", "png", "jpg", "jpeg", "gif", "svg", "webp", "avif", "ico",
        "woff", "woff2", "ttf", "otf", "eot", "wasm", "mp4", "webm", "mp3", "ogg", "wav",
    ]
    static let urlAttributes: Set<String> = [
        "src", "href", "srcset", "imagesrcset", "poster", "data", "action", "background",
        "manifest", "icon", "xlink:href", "formaction", "cite",
    ]

    private func isLocal(_ w: String) -> Bool {
        let u = w.utf8
        guard let first = u.first, first != 0x23 else { return false }  // empty, #fragment
        if first == 0x2F, u.dropFirst().first == 0x2F { return false }  // //host
        // A scheme (http:, data:, mailto:) is letters before a colon that comes before any slash.
        for b in u {
            if b == 0x3A { return false }
            if b == 0x2F { return true }
        }
        return true
    }

    private func isTokenByte(_ b: UInt8) -> Bool {
        !(b <= 0x20 || b == 0x22 || b == 0x27 || b == 0x60 || b == 0x3C || b == 0x3E || b == 0x5C || b == 0x7F
            || b == 0x7B || b == 0x7D || b == 0x2C || b == 0x3B)
    }

    private func isBlank(_ b: UInt8) -> Bool { b == 0x20 || b == 0x0A || b == 0x09 || b == 0x0D }

    private func lower(_ b: UInt8) -> UInt8 { (65...90).contains(b) ? b + 32 : b }

    /// `{"key": …` or `, key: …`: a quoted token that is an object key.
    private func isObjectKey(_ b: [UInt8], open: Int, close: Int) -> Bool {
        var f = close + 1
        while f < b.count, isBlank(b[f]) { f += 1 }
        guard f < b.count, b[f] == UInt8(ascii: ":") else { return false }
        var k = open - 1
        while k >= 0, isBlank(b[k]) { k -= 1 }
        return k >= 0 && (b[k] == UInt8(ascii: "{") || b[k] == UInt8(ascii: ","))
    }

    /// The identifier that ends at `end` (exclusive).
    private func wordBefore(_ b: [UInt8], end: Int) -> Substring {
        var s = end
        while s > 0, isIdentifierByte(b[s - 1]) { s -= 1 }
        return Substring(String(decoding: b[s..<end], as: UTF8.self))
    }

    private func isIdentifierByte(_ b: UInt8) -> Bool {
        (48...57).contains(b) || (65...90).contains(b) || (97...122).contains(b) || b == UInt8(ascii: "_")
            || b == UInt8(ascii: "$")
    }

    private func startsWith(_ b: [UInt8], skippingBlanksFrom start: Int, _ word: String) -> Bool {
        var k = start
        while k < b.count, isBlank(b[k]) { k += 1 }
        let w = Array(word.utf8)
        return k + w.count <= b.count && Array(b[k..<(k + w.count)]) == w
    }

    private func endsWith(_ bytes: [UInt8], at i: Int, _ word: String) -> Bool {
        // Called at every `=` of a script: compared in place, nothing allocated.
        let w = word.utf8, count = w.count
        var k = i - 1
        while k >= 0, bytes[k] == 0x20 { k -= 1 }
        guard k + 1 >= count else { return false }
        var o = 0
        for b in w.reversed() {
            if lower(bytes[k - o]) != lower(b) { return false }
            o += 1
        }
        let before = k - count
        return before < 0 || !(isWordByte(bytes[before]))
    }

    private func isWordByte(_ b: UInt8) -> Bool {
        (48...57).contains(b) || (65...90).contains(b) || (97...122).contains(b) || b == UInt8(ascii: "-")
            || b == UInt8(ascii: "_")
    }

    private func isAttribute(_ bytes: [UInt8], before q: Int, named: String) -> Bool {
        var k = q - 1
        while k >= 0, bytes[k] == 0x20 { k -= 1 }
        guard k >= 0, bytes[k] == UInt8(ascii: "=") else { return false }
        return endsWith(bytes, at: k, named)
    }

    /// `name` of `name="…"` when the quote at `q` opens an attribute value (lowercased).
    private func attributeName(_ b: [UInt8], before q: Int) -> String? {
        var k = q - 1
        while k >= 0, b[k] == 0x20 { k -= 1 }
        guard k >= 0, b[k] == UInt8(ascii: "=") else { return nil }
        k -= 1
        while k >= 0, b[k] == 0x20 { k -= 1 }
        let end = k + 1
        while k >= 0, isWordByte(b[k]) || b[k] == UInt8(ascii: ":") { k -= 1 }
        guard k + 1 < end else { return nil }
        return String(decoding: b[(k + 1)..<end].map { lower($0) }, as: UTF8.self)
    }
}

func percentDecode(_ s: String) -> String {
    guard s.utf8.contains(0x25) else { return s }
    var out: [UInt8] = []
    let b = Array(s.utf8)
    var i = 0
    func hex(_ c: UInt8) -> UInt8? {
        switch c {
        case 48...57: return c - 48
        case 65...70: return c - 55
        case 97...102: return c - 87
        default: return nil
        }
    }
    while i < b.count {
        if b[i] == UInt8(ascii: "%"), i + 2 < b.count, let h = hex(b[i + 1]), let l = hex(b[i + 2]) {
            out.append(h << 4 | l)
            i += 3
        } else {
            out.append(b[i])
            i += 1
        }
    }
    return String(decoding: out, as: UTF8.self)
}

/// The last extension of a path's base name, without the dot ("" when none).
func ext(_ path: String) -> String {
    let u = path.utf8
    if u.last == UInt8(ascii: "/") { return ext(String(path.dropLast())) }
    let baseStart = u.lastIndex(of: UInt8(ascii: "/")).map { u.index(after: $0) } ?? u.startIndex
    guard let dot = u[baseStart...].lastIndex(of: UInt8(ascii: ".")), dot != baseStart else { return "" }
    return String(path[u.index(after: dot)...])
}
