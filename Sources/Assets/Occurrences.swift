import IO
import OCI

/// The files a name belongs to: nearly always one, held inline (no array per name for a tree of
/// 100,000 files), more in an array.
struct FileIDs: Sequence {
    private var one: Int32 = -1
    private var more: [Int32] = []

    mutating func append(_ i: Int) {
        if one < 0 { one = Int32(i) } else { more.append(Int32(i)) }
    }

    struct Iterator: IteratorProtocol {
        let ids: FileIDs
        var k = 0
        mutating func next() -> Int? {
            defer { k += 1 }
            if k == 0 { return ids.one < 0 ? nil : Int(ids.one) }
            return k - 1 < ids.more.count ? Int(ids.more[k - 1]) : nil
        }
    }
    func makeIterator() -> Iterator { Iterator(ids: self) }
}

/// The proof behind every rename: where the names of files appear in text, and which of those
/// places are references stamp rewrites. A name found anywhere else (a template literal, a
/// string compared at run time, a map of chunk hashes, a server template) means the browser or
/// the server may still ask for the old name, so that file keeps it.
struct NameFinder {
    /// One place a watched name was found.
    struct Hit {
        var file: Int
        /// Byte offset of the name in the text searched.
        var at: Int
        var end: Int
        var found: String
    }

    /// Base names (and their percent-encoded form) → watched files.
    private var byName: [String: FileIDs] = [:]
    /// Extension → the distinct lengths of the names above that end with it.
    private var lengths: [String: [Int]] = [:]
    /// Whole quoted strings that name a watched file: the hash part of a name
    /// (`{12:"abcdef0123456789"}`, a webpack chunk map), a long digit run of a name, and the stem
    /// of a script (`define(['./workbox-5ffe50d4'], …)`, an AMD module id).
    private var tokens: [String: FileIDs] = [:]
    /// First bytes of the extensions above, and lengths of the tokens: most dots and quotes of
    /// a script are neither, and are passed over without making a string.
    private var extensionStart = [Bool](repeating: false, count: 256)
    private var tokenLengths = Set<Int>()
    private static let dots = ByteSkip([0x2E])
    private static let dotsAndQuotes = ByteSkip([0x2E, 0x22, 0x27, 0x60])

    /// `paths[i]` for every watched `i`.
    init(paths: [String], watched: [Int]) {
        for i in watched {
            let p = paths[i]
            let base = Path.basename(p)
            var names = [base]
            let encoded = percentEncode(base)
            if encoded != base { names.append(encoded) }
            for name in names {
                byName[name, default: FileIDs()].append(i)
                let e = ext(name)
                if !lengths[e, default: []].contains(name.utf8.count) {
                    lengths[e, default: []].append(name.utf8.count)
                }
            }
            if let h = Fingerprint.of(p) { tokens[String(h), default: FileIDs()].append(i) }
            for run in digitRuns(base) { tokens[run, default: FileIDs()].append(i) }
            let e = ext(base)
            if e == "js" || e == "mjs" { tokens["./" + base.dropLast(e.count + 1), default: FileIDs()].append(i) }
        }
        for e in lengths.keys { if let f = e.utf8.first { extensionStart[Int(f)] = true } }
        tokenLengths = Set(tokens.keys.map(\.utf8.count))
    }

    var isEmpty: Bool { byName.isEmpty }

    /// Watched names in `bytes` that are not inside one of `refs` (sorted by offset) resolving
    /// to that file. `relativeIsModule`: in server code, `./x` and `../x` name the server's own
    /// modules, not frontend files.
    func unaccounted(in bytes: [UInt8], refs: [Reference], paths: [String], relativeIsModule: Bool = false) -> [Hit] {
        notCovered(candidates(in: bytes, relativeIsModule: relativeIsModule), refs: refs, paths: paths)
    }

    /// What of `hits` the coverage check can still need, once a file's references are known
    /// but not yet their final targets (a script's quoted paths are resolved again by page):
    /// every hit inside a reference, and of those outside any, only the first for each file
    /// (nothing can cover it; only the first uncovered one is reported). A text dense with
    /// names then costs memory for its references, not for every place a name appears.
    func reduced(_ hits: [Hit], refs: [Reference]) -> [Hit] {
        var firstOutside: [Int: Int] = [:]  // file -> index in `kept`
        var kept: [Hit] = []
        for h in hits {
            var lo = 0, hi = refs.count
            while lo < hi {
                let m = (lo + hi) / 2
                if refs[m].range.lowerBound <= h.at { lo = m + 1 } else { hi = m }
            }
            if lo > 0, refs[lo - 1].range.upperBound >= h.end {
                kept.append(h)
            } else if let i = firstOutside[h.file] {
                if h.at < kept[i].at { kept[i] = h }
            } else {
                firstOutside[h.file] = kept.count
                kept.append(h)
            }
        }
        return kept
    }

    /// A text read in overlapping pieces (`TextSource.windows`; it is not rewritten, so no name
    /// in it is covered): the first place of each watched name (offsets in the whole text), when
    /// `names`, and the names it may build, when a `matcher` is given.
    func firstHits(
        in windows: ((_ piece: [UInt8], _ base: Int) throws -> Void) throws -> Void, names: Bool, script: Bool,
        matcher: FragmentMatcher?
    ) throws -> (hits: [Hit], built: [(String, String)]) {
        var first: [Int: Hit] = [:]
        var built: [(String, String)] = []
        var seen = Set<String>()
        try windows { bytes, base in
            if names {
                for var h in candidates(in: bytes, script: script) {
                    h.at += base
                    h.end += base
                    if first[h.file].map({ h.at < $0.at }) ?? true { first[h.file] = h }
                }
            }
            for m in matcher?.matches(Fragments(bytes)) ?? [] where seen.insert(m.0 + "\0" + m.1).inserted {
                built.append(m)
            }
        }
        return (first.values.sorted { $0.at < $1.at }, built)
    }

    /// The hits of `candidates` outside the references (`refs` sorted by offset) to their file.
    func notCovered(_ hits: [Hit], refs: [Reference], paths: [String]) -> [Hit] {
        hits.filter { !covered($0, refs, paths) }
    }

    /// Watched names in `bytes`, but for those in another site's URL (and, `relativeIsModule`,
    /// in a `./` or `../` path: a server's own modules).
    func candidates(in bytes: [UInt8], relativeIsModule: Bool = false, script: Bool = false) -> [Hit] {
        var hits: [Hit] = []
        // The loop acts only at dots and, when there are tokens to look for, quotes.
        let skip = tokens.isEmpty ? NameFinder.dots : NameFinder.dotsAndQuotes
        bytes.withUnsafeBufferPointer { b in
            let n = bytes.count
            var i = 0
            while true {
                i = skip.next(b, from: i)
                guard i < n else { break }
                let c = b[i]
                if c == 0x2E, i + 1 < n, extensionStart[Int(b[i + 1])] {  // . then an extension
                    var j = i + 1
                    while j < n, j - i <= 12, isAlnum(b[j]) { j += 1 }
                    if j > i + 1, j - i <= 12,
                        j == n || !(isAlnum(b[j]) || b[j] == 0x5F || (b[j] == 0x2E && j + 1 < n && isAlnum(b[j + 1]))),
                        let ls = lengths[String(decoding: b[(i + 1)..<j], as: UTF8.self)]
                    {
                        for l in ls {
                            let s = j - l
                            guard s >= 0, s == 0 || !isNameByte(b[s - 1]) else { continue }
                            let name = String(decoding: b[s..<j], as: UTF8.self)
                            for f in byName[name] ?? FileIDs() { hits.append(Hit(file: f, at: s, end: j, found: name)) }
                        }
                    }
                    i += 1
                    continue
                }
                if c == 0x22 || c == 0x27 || c == 0x60, !tokens.isEmpty {
                    var j = i + 1
                    while j < n, j - i <= 80, isTokenByte(b[j]) { j += 1 }
                    if j < n, b[j] == c, j > i + 1, tokenLengths.contains(j - i - 1) || b[i + 1] == 0x2E {
                        let s = String(decoding: b[(i + 1)..<j], as: UTF8.self)
                        for f in tokens[s] ?? FileIDs() { hits.append(Hit(file: f, at: i + 1, end: j, found: s)) }
                        if s.hasPrefix("../"), let slash = s.utf8.lastIndex(of: 0x2F) {
                            let stem = "./" + s[s.utf8.index(after: slash)...]
                            for f in tokens[stem] ?? FileIDs() {
                                hits.append(Hit(file: f, at: i + 1, end: j, found: s))
                            }
                        }
                    }
                }
                i += 1
            }
        }
        return hits.filter { h in
            if relativeIsModule, inRelativeToken(bytes, h.at) { return false }
            if script, inProse(bytes, h.at, h.end) { return false }
            return !inExternalURL(bytes, h.at)
        }
    }

    /// Inside a reference that resolves to the file (or, for a URL the browser fetches, to a
    /// file of the same name, which is then what this text names).
    private func covered(_ h: Hit, _ refs: [Reference], _ paths: [String]) -> Bool {
        var lo = 0, hi = refs.count
        while lo < hi {
            let m = (lo + hi) / 2
            if refs[m].range.lowerBound <= h.at { lo = m + 1 } else { hi = m }
        }
        guard lo > 0 else { return false }
        let r = refs[lo - 1]
        guard r.range.upperBound >= h.end, let t = r.target else { return false }
        return t == paths[h.file] || (r.context == .url && Path.basename(t) == Path.basename(paths[h.file]))
    }

    /// A name in a sentence: inside a string of a script that holds words (four blanks or
    /// more) and no markup (`<`, `=`, `url(`), after a blank or `(` — "bare labels (index.js)"
    /// in a grammar's documentation. Nothing fetches what a sentence names.
    private func inProse(_ b: [UInt8], _ at: Int, _ end: Int) -> Bool {
        guard at > 0, b[at - 1] == 0x20 || b[at - 1] == 0x28 else { return false }
        var blanks = 0, k = at - 1
        while k >= 0, at - k < 4096, b[k] != 0x22, b[k] != 0x27, b[k] != 0x60 {
            if b[k] == 0x0A || b[k] == 0x3C || b[k] == 0x3D { return false }
            if b[k] == 0x20 { blanks += 1 }
            k -= 1
        }
        guard k >= 0, b[k] == 0x22 || b[k] == 0x27 || b[k] == 0x60 else { return false }
        let quote = b[k]
        var e = end
        while e < b.count, e - end < 4096, b[e] != quote {
            if b[e] == 0x0A || b[e] == 0x3C || b[e] == 0x3D { return false }
            if b[e] == 0x20 { blanks += 1 }
            e += 1
        }
        guard e < b.count, b[e] == quote, blanks >= 4 else { return false }
        // `url(` right before: a style in a string, not a sentence.
        return !(at >= 4 && b[at - 4] == 0x75 && b[at - 3] == 0x72 && b[at - 2] == 0x6C && b[at - 1] == 0x28)
    }

    /// The quoted token around `at` starts with `./` or `../`.
    private func inRelativeToken(_ b: [UInt8], _ at: Int) -> Bool {
        var k = at - 1
        while k >= 0, at - k < 512, b[k] != 0x22, b[k] != 0x27, b[k] != 0x60, b[k] > 0x20 { k -= 1 }
        guard k >= 0, k + 1 < b.count, b[k] == 0x22 || b[k] == 0x27 || b[k] == 0x60 else { return false }
        return b[k + 1] == 0x2E
    }

    /// Part of `https://host/…` or `//host/…`: another site's file of that name.
    private func inExternalURL(_ b: [UInt8], _ at: Int) -> Bool {
        var k = at - 1
        while k >= 0, at - k < 2048,
            !(b[k] <= 0x20 || b[k] == 0x22 || b[k] == 0x27 || b[k] == 0x60 || b[k] == 0x28 || b[k] == 0x3D
                || b[k] == 0x3C || b[k] == 0x3E || b[k] == 0x2C)
        { k -= 1 }
        var s = k + 1
        if s + 1 < at, b[s] == 0x2F, b[s + 1] == 0x2F { return true }
        while s < at,
            (97...122).contains(b[s]) || (65...90).contains(b[s]) || (48...57).contains(b[s]) || b[s] == 0x2B
                || b[s] == 0x2D || b[s] == 0x2E
        { s += 1 }
        return s > k + 1 && s + 2 < at && b[s] == 0x3A && b[s + 1] == 0x2F && b[s + 2] == 0x2F
    }

    private func isAlnum(_ b: UInt8) -> Bool {
        (48...57).contains(b) || (65...90).contains(b) || (97...122).contains(b)
    }
    private func isNameByte(_ b: UInt8) -> Bool { isAlnum(b) || b == 0x5F || b == 0x2D || b == 0x2E || b >= 0x80 }
    private func isTokenByte(_ b: UInt8) -> Bool { isAlnum(b) || b == 0x5F || b == 0x2D || b == 0x2E || b == 0x2F }

    /// Runs of 8 or more decimal digits in a name (`report.20240101.css`): a date or build
    /// number, looked up as a quoted string of its own.
    private func digitRuns(_ name: String) -> [String] {
        var out: [String] = []
        var run: [UInt8] = []
        for b in Array(name.utf8) + [0] {
            if (48...57).contains(b) {
                run.append(b)
                continue
            }
            if run.count >= 8 { out.append(String(decoding: run, as: UTF8.self)) }
            run = []
        }
        return out
    }
}

/// Names built while a script runs: the literal parts of template literals next to `${…}`, and
/// of string concatenations next to `+`. `lunr.${lang}.min.js` gives the prefix `lunr.` and the
/// suffix `.min.js`; `""+e+".js"` the suffix `.js`.
struct Fragments {
    private static let quotes = ByteSkip([0x22, 0x27, 0x60])
    /// Literal text right before a dynamic part: the start of a name (its last path segment).
    var prefixes: [(String, Int)] = []
    /// Literal text right after a dynamic part: the end of a name (its first path segment).
    var suffixes: [(String, Int)] = []
    /// Short quoted strings of the file (for a suffix that is only an extension: which stems
    /// the script may put in front of it), made only when there is such a suffix.
    var quoted = Set<String>()
    private var shortNames: [Range<Int>] = []

    init(_ bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { b in scan(b) }
    }

    private mutating func scan(_ b: UnsafeBufferPointer<UInt8>) {
        let n = b.count
        var i = 0
        func blankBack(_ k: Int) -> Int {
            var k = k
            while k >= 0, b[k] == 0x20 || b[k] == 0x0A || b[k] == 0x09 || b[k] == 0x0D { k -= 1 }
            return k
        }
        func blankFwd(_ k: Int) -> Int {
            var k = k
            while k < n, b[k] == 0x20 || b[k] == 0x0A || b[k] == 0x09 || b[k] == 0x0D { k += 1 }
            return k
        }
        // One literal's parts between `${…}`: one buffer for every literal of the file.
        var parts: [(Int, Int)] = []
        parts.reserveCapacity(8)
        while true {
            i = Fragments.quotes.next(b, from: i)
            guard i < n else { break }
            let c = b[i]
            parts.removeAll(keepingCapacity: true)
            var start = i + 1, j = i + 1
            var closed = false
            while j < n, j - i < 4096 {
                let d = b[j]
                if d == 0x5C {
                    j += 2
                    continue
                }
                if d == c {
                    parts.append((start, j))
                    closed = true
                    break
                }
                if c != 0x60, d == 0x0A { break }
                if c == 0x60, d == UInt8(ascii: "$"), j + 1 < n, b[j + 1] == UInt8(ascii: "{") {
                    parts.append((start, j))
                    // Skip the expression: braces counted, nested literals skipped roughly.
                    var depth = 1, k = j + 2
                    while k < n, depth > 0, k - j < 4096 {
                        if b[k] == UInt8(ascii: "{") { depth += 1 } else if b[k] == UInt8(ascii: "}") { depth -= 1 }
                        k += 1
                    }
                    start = k
                    j = k
                    continue
                }
                j += 1
            }
            guard closed, j <= n else {
                i += 1
                continue
            }
            if parts.count == 1, parts[0].1 - parts[0].0 <= 64, Fragments.isName(b, parts[0].0, parts[0].1) {
                shortNames.append(parts[0].0..<parts[0].1)
            }
            // Interpolations inside a template literal.
            for (k, p) in parts.enumerated() {
                if k < parts.count - 1 { addPrefix(b, p.0, p.1) }
                if k > 0 { addSuffix(b, p.0, p.1) }
            }
            // Concatenation around the whole literal.
            let before = blankBack(i - 1), after = blankFwd(j + 1)
            if before >= 0, b[before] == UInt8(ascii: "+") { addSuffix(b, parts[0].0, parts[0].1) }
            if after < n, b[after] == UInt8(ascii: "+"), b.count > after + 1, b[after + 1] != UInt8(ascii: "+") {
                addPrefix(b, parts[parts.count - 1].0, parts[parts.count - 1].1)
            }
            i = j + 1
        }
        // The stems a script holds as strings matter only next to a bare extension.
        if suffixes.contains(where: { $0.0.utf8.first == 0x2E && !$0.0.utf8.dropFirst().contains(0x2E) }) {
            for r in shortNames { quoted.insert(String(decoding: b[r], as: UTF8.self)) }
        }
    }

    /// The last path segment of a literal that ends where a run-time value starts, when it may
    /// be the start of a name: two name characters or more, ending in `.`, `-` or `_`.
    private mutating func addPrefix(_ b: UnsafeBufferPointer<UInt8>, _ s: Int, _ e: Int) {
        var k = e
        while k > s, b[k - 1] != 0x2F { k -= 1 }
        guard e - k >= 2, let last = Optional(b[e - 1]), last == 0x2E || last == 0x2D || last == 0x5F,
            Fragments.isName(b, k, e),
            (k..<e).contains(where: { Fragments.isLetter(b[$0]) })
        else { return }
        prefixes.append((String(decoding: b[k..<e], as: UTF8.self), k))
    }

    /// The first segment of a literal that starts where a run-time value ends, when it may be
    /// the end of a name (it holds an extension); one that starts with `/` is followed by a
    /// whole name, which is found as such.
    private mutating func addSuffix(_ b: UnsafeBufferPointer<UInt8>, _ s: Int, _ e: Int) {
        guard s < e, b[s] != 0x2F else { return }
        var k = s
        while k < e, b[k] != 0x2F, b[k] != 0x3F, b[k] != 0x23 { k += 1 }
        guard k - s >= 2, Fragments.isName(b, s, k), let dot = (s..<k).last(where: { b[$0] == 0x2E }), dot < k - 1
        else { return }
        suffixes.append((String(decoding: b[s..<k], as: UTF8.self), s))
    }

    static func isLetter(_ c: UInt8) -> Bool { (65...90).contains(c) || (97...122).contains(c) }

    /// Letters, digits, `.`, `-`, `_` only.
    static func isName(_ b: UnsafeBufferPointer<UInt8>, _ s: Int, _ e: Int) -> Bool {
        guard s < e else { return false }
        for k in s..<e {
            let c = b[k]
            guard (48...57).contains(c) || isLetter(c) || c == 0x2E || c == 0x2D || c == 0x5F else { return false }
        }
        return true
    }
}

/// `My Logo (1).svg` → `My%20Logo%20(1).svg`: the bytes a URL would hold.
func percentEncode(_ s: String) -> String {
    func plain(_ b: UInt8) -> Bool {
        !(b <= 0x20 || b >= 0x7F || b == 0x22 || b == 0x25 || b == 0x3C || b == 0x3E || b == 0x23 || b == 0x3F)
    }
    if s.utf8.allSatisfy(plain) { return s }
    var out = ""
    for b in s.utf8 {
        if b <= 0x20 || b >= 0x7F || b == 0x22 || b == 0x25 || b == 0x3C || b == 0x3E || b == 0x23 || b == 0x3F {
            out += "%" + String(b >> 4, radix: 16, uppercase: true) + String(b & 15, radix: 16, uppercase: true)
        } else {
            out.unicodeScalars.append(UnicodeScalar(b))
        }
    }
    return out
}
