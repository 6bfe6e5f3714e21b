import OCI

/// How a file's text is searched for references to other files.
public enum AssetKind: Sendable {
    case html, css, javascript, json, binary

    public static func of(_ path: String) -> AssetKind {
        switch ext(path).lowercased() {
        case "html", "htm", "svg", "xml": return .html
        case "css": return .css
        case "js", "mjs", "cjs": return .javascript
        case "json", "map", "webmanifest": return .json
        default: return .binary
        }
    }
}

/// One reference found in a file: the bytes of its path (without quotes, query or fragment)
/// and the file of the tree it resolves to.
public struct Reference: Sendable, Equatable {
    /// Byte range of the path part of the token in the file.
    public var range: Range<Int>
    /// The token's path as written (percent-encoded, relative or root-absolute).
    public var written: String
    /// The path inside the asset root it resolves to, or nil when it resolves to nothing.
    public var target: String?
}

/// Finds references in HTML, CSS, JavaScript, JSON and source maps, the way the files use them:
/// HTML attributes (`src`, `href`, `srcset`, `poster`, ...), CSS `url()` and `@import`, JS
/// `import`/`import()`/`new URL()` and path strings, `sourceMappingURL`, JSON string values.
///
/// A token counts when it is a quoted or `url()` path with no whitespace, and resolves to a file
/// of the tree: `/x` from the asset root, `./x` and `../x` from the file's folder, a bare `x`
/// from the file's folder in HTML, CSS and JSON, and from the root in JS when it contains a `/`
/// (Vite's preload lists). URLs with a scheme, `//host` and `data:` are never touched.
public struct ReferenceScanner: Sendable {
    /// Every file of the tree, by path relative to the asset root.
    public let files: Set<String>

    public init(files: Set<String>) { self.files = files }

    /// References in `bytes` of the file at `path`. `outsideRoot` files (server code that writes
    /// HTML) only count root-absolute references.
    public func scan(_ bytes: [UInt8], path: String, kind: AssetKind, outsideRoot: Bool = false) -> [Reference] {
        guard kind != .binary else { return [] }
        var out: [Reference] = []
        var seen = Set<Int>()
        func consider(_ start: Int, _ end: Int, bareOK: Bool) {
            guard start < end, !seen.contains(start) else { return }
            var pathEnd = start
            while pathEnd < end, bytes[pathEnd] != UInt8(ascii: "?"), bytes[pathEnd] != UInt8(ascii: "#") { pathEnd += 1 }
            guard pathEnd > start else { return }
            let written = String(decoding: bytes[start..<pathEnd], as: UTF8.self)
            guard let target = resolve(written, from: path, kind: kind, outsideRoot: outsideRoot, bareOK: bareOK) else {
                if looksLikeAssetPath(written, kind: kind, outsideRoot: outsideRoot) {
                    out.append(Reference(range: start..<pathEnd, written: written, target: nil))
                    seen.insert(start)
                }
                return
            }
            seen.insert(start)
            out.append(Reference(range: start..<pathEnd, written: written, target: target))
        }

        let n = bytes.count
        var i = 0
        while i < n {
            let c = bytes[i]
            if c == 0x22 || c == 0x27 || c == 0x60 { // " ' `
                // srcset="a.png 1x, b.png 2x": candidates separated by commas.
                if isAttribute(bytes, before: i, named: "srcset") || isAttribute(bytes, before: i, named: "imagesrcset") {
                    if let close = bytes[(i + 1)...].firstIndex(of: c) {
                        var j = i + 1
                        while j < close {
                            while j < close, bytes[j] == 0x20 || bytes[j] == 0x2C || bytes[j] == 0x0A || bytes[j] == 0x09 { j += 1 }
                            let s = j
                            while j < close, bytes[j] != 0x20, bytes[j] != 0x0A, bytes[j] != 0x09, bytes[j] != 0x2C { j += 1 }
                            consider(s, j, bareOK: true)
                            while j < close, bytes[j] != 0x2C { j += 1 }
                        }
                        i = close + 1
                        continue
                    }
                }
                var j = i + 1
                let limit = min(n, i + 2048)
                while j < limit, isTokenByte(bytes[j]) { j += 1 }
                if j < limit, bytes[j] == c, j > i + 1 {
                    consider(i + 1, j, bareOK: kind != .javascript)
                    i = j + 1
                    continue
                }
                i += 1
                continue
            }
            if (kind == .css || kind == .html) && c == UInt8(ascii: "(") && i >= 3 && lower(bytes[i - 3]) == UInt8(ascii: "u")
                && lower(bytes[i - 2]) == UInt8(ascii: "r") && lower(bytes[i - 1]) == UInt8(ascii: "l") {
                var j = i + 1
                while j < n, bytes[j] == 0x20 { j += 1 }
                if j < n, bytes[j] != 0x22, bytes[j] != 0x27 {
                    let s = j
                    while j < n, isTokenByte(bytes[j]), bytes[j] != UInt8(ascii: ")") { j += 1 }
                    consider(s, j, bareOK: true)
                }
                i += 1
                continue
            }
            if c == UInt8(ascii: "=") {
                // sourceMappingURL=x.map, and unquoted HTML attributes src=x.js.
                if endsWith(bytes, at: i, "sourceMappingURL") {
                    var j = i + 1
                    let s = j
                    while j < n, isTokenByte(bytes[j]), bytes[j] != UInt8(ascii: "*") { j += 1 }
                    consider(s, j, bareOK: true)
                    i = j
                    continue
                }
                if kind == .html, i + 1 < n, bytes[i + 1] != 0x22, bytes[i + 1] != 0x27,
                   ["src", "href", "poster"].contains(where: { endsWith(bytes, at: i, $0) }) {
                    var j = i + 1
                    let s = j
                    while j < n, isTokenByte(bytes[j]), bytes[j] != UInt8(ascii: ">") { j += 1 }
                    consider(s, j, bareOK: true)
                    i = j
                    continue
                }
            }
            i += 1
        }
        return out.sorted { $0.range.lowerBound < $1.range.lowerBound }
    }

    /// The file a written path names, if the tree has it.
    public func resolve(_ written: String, from path: String, kind: AssetKind, outsideRoot: Bool, bareOK: Bool) -> String? {
        guard isLocal(written) else { return nil }
        let decoded = percentDecode(written)
        let dir = path.utf8.contains(0x2F) ? Path.dirname(path) : ""
        var candidates: [String] = []
        if decoded.hasPrefix("/") {
            candidates.append(decoded)
        } else if outsideRoot {
            return nil
        } else if decoded.hasPrefix("./") || decoded.hasPrefix("../") {
            candidates.append(dir + "/" + decoded)
        } else if bareOK {
            candidates.append(dir + "/" + decoded)
        } else if kind == .javascript, decoded.utf8.contains(0x2F) {
            candidates.append(decoded)
            candidates.append(dir + "/" + decoded)
        }
        for c in candidates {
            if let p = Path.clean(c), files.contains(p) { return p }
        }
        return nil
    }

    /// A path that should resolve (for `assets verify`): local, with a file extension of the web.
    func looksLikeAssetPath(_ written: String, kind: AssetKind, outsideRoot: Bool) -> Bool {
        guard isLocal(written), !outsideRoot || written.hasPrefix("/") else { return false }
        if kind == .javascript && !(written.hasPrefix("/") || written.hasPrefix("./") || written.hasPrefix("../")) { return false }
        if kind == .json && !(written.hasPrefix("/") || written.hasPrefix("./") || written.hasPrefix("../")) { return false }
        let e = ext(written).lowercased()
        return ReferenceScanner.webExtensions.contains(e) && !written.hasSuffix("/")
    }

    static let webExtensions: Set<String> = ["js", "mjs", "css", "map", "png", "jpg", "jpeg", "gif", "svg", "webp", "avif", "ico",
                                             "woff", "woff2", "ttf", "otf", "eot", "wasm", "mp4", "webm", "mp3", "ogg", "wav"]

    private func isLocal(_ w: String) -> Bool {
        if w.isEmpty || w.hasPrefix("//") || w.hasPrefix("#") { return false }
        if let colon = w.firstIndex(of: ":") {
            let slash = w.firstIndex(of: "/") ?? w.endIndex
            if colon < slash { return false } // scheme: http:, data:, mailto:, ...
        }
        return true
    }

    private func isTokenByte(_ b: UInt8) -> Bool {
        !(b <= 0x20 || b == 0x22 || b == 0x27 || b == 0x60 || b == 0x3C || b == 0x3E || b == 0x5C || b == 0x7F || b == 0x7B || b == 0x7D || b == 0x2C || b == 0x3B)
    }

    private func lower(_ b: UInt8) -> UInt8 { (65...90).contains(b) ? b + 32 : b }

    private func endsWith(_ bytes: [UInt8], at i: Int, _ word: String) -> Bool {
        let w = Array(word.utf8)
        var k = i - 1
        while k >= 0, bytes[k] == 0x20 { k -= 1 }
        guard k + 1 >= w.count else { return false }
        for (o, b) in w.reversed().enumerated() where lower(bytes[k - o]) != lower(b) { return false }
        let before = k - w.count
        return before < 0 || !(isWordByte(bytes[before]))
    }

    private func isWordByte(_ b: UInt8) -> Bool {
        (48...57).contains(b) || (65...90).contains(b) || (97...122).contains(b) || b == UInt8(ascii: "-") || b == UInt8(ascii: "_")
    }

    private func isAttribute(_ bytes: [UInt8], before q: Int, named: String) -> Bool {
        var k = q - 1
        while k >= 0, bytes[k] == 0x20 { k -= 1 }
        guard k >= 0, bytes[k] == UInt8(ascii: "=") else { return false }
        return endsWith(bytes, at: k, named)
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
