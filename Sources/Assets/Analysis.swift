import Hashing
import IO
import OCI

/// What stamp proves about a tree before it renames anything: the references of every file
/// (resolved as the browser does), the places where names appear outside them, and from that
/// the files that may be renamed, iterated to a fixed point (see `AssetHasher`).
struct Analysis {
    var refs: [String: [Reference]] = [:]
    /// Identities (`AssetTree.identity`) of the text files read from disk, to see they do not
    /// change before they are rewritten.
    var identities: [String: String] = [:]
    /// The files that get a new name.
    var renamed = Set<String>()
    /// Every other file → why it keeps its name (with the unhashed names of the files that say
    /// so: the same words for a folder and for stamp's output of it).
    var kept: [String: String] = [:]
    /// The same with where in those files (byte offsets), for `--explain`.
    var detail: [String: String] = [:]

    /// Why a file keeps its name; `at`, where the reason is in the file it names.
    struct Reason {
        var text: String
        var at: String? = nil
    }

    typealias Reader = @Sendable (String) throws -> ([UInt8], String?)

    /// Reads a text file in overlapping pieces (`TextSource.windows`).
    typealias Windows = @Sendable (String, ([UInt8], Int) throws -> Void) throws -> Void

    /// `oversized`: text files not to read whole (verbatim in `role`): searched in pieces
    /// (`windows`) for the names they hold, nothing else.
    /// `role`: each file's, by its index in `table`.
    init(
        table: PathTable, role: [Role], extras: [AssetFile], naming: Naming, oversized: Set<String> = [],
        windows: Windows? = nil, read: @escaping Reader
    ) throws {
        let paths = table.paths
        func roleOf(_ p: String) -> Role { role[table[p]!] }
        var pins: [String: Reason] = [:]
        // Names of files that may change name, searched in every text file.
        let watched = paths.indices.filter { i in
            switch role[i] {
            case .candidate, .bundler: return true
            default: return false
            }
        }
        let finder = NameFinder(paths: paths, watched: watched)
        let matcher = FragmentMatcher(paths: watched.map { paths[$0] })
        var scanner = ReferenceScanner(files: Set(paths))

        // One read of every text file, on all cores: its references, the names found in it, the
        // names it may build. Source maps are not searched for names: browsers fetch nothing a
        // map names, and the sources it embeds mention names of the source tree.
        let text = paths.filter { AssetKind.of($0) != .binary }
        // Taken a batch at a time, so the results are not all held twice.
        var hitsOf = [[NameFinder.Hit]](repeating: [], count: text.count)
        var builtIn = [[(String, String)]](repeating: [], count: text.count)
        try parallelBatches(count: text.count) {
            [scanner, role, table] k -> Result<([Reference], [NameFinder.Hit], [(String, String)], String?), Error> in
            Result {
                let p = text[k], kind = AssetKind.of(p)
                if oversized.contains(p), let windows {
                    // Not rewritten: the first place of each name is all the pins need.
                    let (hits, built) = try finder.firstHits(
                        in: { try windows(p, $0) }, names: !finder.isEmpty && ext(p) != "map",
                        script: kind == .javascript || kind == .json, matcher: matcher)
                    return ([], hits, built, nil)
                }
                let (bytes, digest) = try read(p)
                let refs = scanner.scan(bytes, path: p, kind: kind)
                let verbatim: Bool
                if case .verbatim = role[table[p]!] { verbatim = true } else { verbatim = false }
                let searched = !finder.isEmpty && ext(p) != "map"
                let hits =
                    searched
                    ? finder.reduced(
                        finder.candidates(in: bytes, script: kind == .javascript || kind == .json), refs: refs)
                    : []
                let built = kind == .javascript || kind == .html || verbatim ? matcher.matches(Fragments(bytes)) : []
                return (refs, hits, built, digest)
            }
        } take: { k, result in
            let (r, hits, built, identity) = try result.get()
            refs[text[k]] = r
            hitsOf[k] = hits
            builtIn[k] = built
            if let identity { identities[text[k]] = identity }
        }
        Analysis.resolveByPage(&refs, scanner: &scanner, text: text)

        for (k, p) in text.enumerated() where !hitsOf[k].isEmpty || !builtIn[k].isEmpty {
            // A verbatim file is not rewritten: no name in it is accounted for.
            let verbatim: Bool
            if case .verbatim = roleOf(p) { verbatim = true } else { verbatim = false }
            let q = naming.unhashed(p)
            let hits = finder.notCovered(hitsOf[k], refs: verbatim ? [] : refs[p] ?? [], paths: paths)
            for h in hits.sorted(by: { $0.at < $1.at }) where pins[paths[h.file]] == nil {
                pins[paths[h.file]] = Reason(
                    text: "\"\(h.found)\" is in \(q), where stamp cannot rewrite it", at: "\(q) at byte \(h.at)")
            }
            for (target, fragment) in builtIn[k] where pins[target] == nil {
                pins[target] = Reason(text: "its name may be built at run time in \(q) (from \"\(fragment)\")")
            }
        }
        var referenced = Set<String>()
        for (p, r) in refs {
            if case .verbatim = roleOf(p) { continue }
            for x in r { if let t = x.target, t != p { referenced.insert(t) } }
        }
        let server = Analysis.serverFiles(extras, finder: finder, matcher: matcher, scanner: scanner, paths: paths)
        referenced.formUnion(server.referenced)
        for (p, why) in server.pins where pins[p] == nil { pins[p] = why }
        // A file no page, style sheet, script or server file here refers to is asked for by
        // someone stamp cannot see (a server, another site), by this name.
        for p in paths where roleOf(p) == .candidate && pins[p] == nil && !referenced.contains(p) {
            pins[p] = Reason(text: "no file here refers to it (what asks for it uses this name)")
        }

        // The fixed point: candidates not pinned are renamed; a bundler-named file whose bytes
        // change (it references a renamed file) is renamed too; one that cannot be renamed pins
        // what it references.
        while true {
            var renamed = Set(paths.filter { roleOf($0) == .candidate && pins[$0] == nil })
            var grew = true
            while grew {
                grew = false
                for p in paths where roleOf(p) == .bundler && pins[p] == nil && !renamed.contains(p) {
                    if refs[p]?.contains(where: { $0.target.map(renamed.contains) ?? false }) == true {
                        renamed.insert(p)
                        grew = true
                    }
                }
            }
            var violated = false
            for p in paths where roleOf(p) == .bundler && !renamed.contains(p) {
                for r in refs[p] ?? [] {
                    guard let t = r.target, renamed.contains(t), pins[t] == nil else { continue }
                    pins[t] = Reason(text: "referenced by \(p), which keeps the name its bundler gave it")
                    violated = true
                }
            }
            if !violated {
                self.renamed = renamed
                break
            }
        }
        for p in paths where !renamed.contains(p) {
            let pin = pins[p]
            switch roleOf(p) {
            case .fixed(let why), .verbatim(let why): kept[p] = why
            case .bundler: kept[p] = pin.map { "named by its bundler; " + $0.text } ?? "named by its bundler"
            case .candidate: kept[p] = pin?.text ?? "kept"
            }
            detail[p] = kept[p]! + (pin?.at.map { " (\($0))" } ?? "")
        }
    }

    /// The references of every text file, resolved as the browser does (a script's quoted paths
    /// from the folder of the pages that load it), for `assets verify`; the hasher's own pass
    /// does the same with the rest of its reading.
    /// `skip`: text files not read (too large to read whole: copied as they are, not rewritten).
    static func references(paths: [String], skip: Set<String> = [], read: @escaping Reader) throws -> (
        refs: [String: [Reference]], scanner: ReferenceScanner
    ) {
        var scanner = ReferenceScanner(files: Set(paths))
        let text = paths.filter {
            let k = AssetKind.of($0)
            return k != .binary && k != .text && !skip.contains($0)
        }
        let first = parallelMap(count: text.count) { [scanner] i -> Result<[Reference], Error> in
            Result {
                let p = text[i]
                return scanner.scan(try read(p).0, path: p, kind: AssetKind.of(p))
            }
        }
        var refs: [String: [Reference]] = [:]
        for (i, p) in text.enumerated() { refs[p] = try first[i].get() }

        resolveByPage(&refs, scanner: &scanner, text: text)
        return (refs, scanner)
    }

    /// Which pages run each script (those that load it, and those that load a script that
    /// imports it); where that is one folder, the script's quoted paths are resolved from it.
    static func resolveByPage(_ refs: inout [String: [Reference]], scanner: inout ReferenceScanner, text: [String]) {
        var pages: [String: Set<String>] = [:]
        var queue: [String] = []
        for p in text where AssetKind.of(p) == .html {
            let dir = p.utf8.contains(0x2F) ? Path.dirname(p) : ""
            for r in refs[p] ?? [] {
                guard let t = r.target, AssetKind.of(t) == .javascript else { continue }
                if pages[t, default: []].insert(dir).inserted { queue.append(t) }
            }
        }
        while let j = queue.popLast() {
            for r in refs[j] ?? [] {
                guard let t = r.target, AssetKind.of(t) == .javascript else { continue }
                let before = pages[t, default: []].count
                pages[t, default: []].formUnion(pages[j]!)
                if pages[t]!.count != before { queue.append(t) }
            }
        }
        for (j, dirs) in pages where dirs.count == 1 {
            let own = j.utf8.contains(0x2F) ? Path.dirname(j) : ""
            if dirs.first! != own { scanner.pageDir[j] = dirs.first! }
        }
        // Unresolved quoted paths that look like no file are dropped.
        for p in text where AssetKind.of(p) == .javascript { refs[p] = scanner.resolveAgain(refs[p] ?? [], path: p) }
    }

    /// Server files outside the root (only their root-absolute references are rewritten): the
    /// files they refer to, and the watched files whose names they use where stamp cannot
    /// rewrite them or may build at run time (first reason of each, in the order given).
    static func serverFiles(
        _ extras: [AssetFile], finder: NameFinder, matcher: FragmentMatcher, scanner: ReferenceScanner,
        paths: [String]
    ) -> (referenced: Set<String>, pins: [(String, Reason)]) {
        var referenced = Set<String>(), pins: [(String, Reason)] = []
        for e in extras {
            let r = scanner.scan(e.bytes, path: e.path, kind: .javascript, outsideRoot: true)
            for x in r { if let t = x.target { referenced.insert(t) } }
            for h in finder.unaccounted(in: e.bytes, refs: r, paths: paths, relativeIsModule: true).sorted(by: {
                $0.at < $1.at
            }) {
                pins.append(
                    (
                        paths[h.file],
                        Reason(
                            text: "\"\(h.found)\" is in \(e.path), where stamp cannot rewrite it",
                            at: "\(e.path) at byte \(h.at)")
                    ))
            }
            for (target, fragment) in matcher.matches(Fragments(e.bytes)) {
                pins.append(
                    (target, Reason(text: "its name may be built at run time in \(e.path) (from \"\(fragment)\")")))
            }
        }
        return (referenced, pins)
    }
}

/// Which watched files a script's name fragments may build (`Fragments`).
struct FragmentMatcher {
    /// Base names, sorted by bytes, with their paths (a name of up to 15 bytes is held inline).
    private let sorted: [(String, String)]
    private let byExt: [String: [(String, String)]]

    init(paths: [String]) {
        sorted = paths.map { (Path.basename($0), $0) }.sorted { utf8Less($0.0, $1.0) }
        var e: [String: [(String, String)]] = [:]
        for p in paths {
            let b = Path.basename(p)
            e[ext(b), default: []].append((b, p))
        }
        byExt = e
    }

    /// (path, the part of a fragment that may start or end its name) for each watched file.
    func matches(_ f: Fragments) -> [(String, String)] {
        var out: [(String, String)] = []
        for (text, _) in f.prefixes {
            let n = text.utf8.lastIndex(of: 0x2F).map { String(text[text.utf8.index(after: $0)...]) } ?? text
            // `lunr.` + lang, `icon-` + name: the start of a name up to a separator (a word alone,
            // `"page" + n`, is text more often than a name).
            guard n.utf8.count >= 2, isName(n), n.utf8.contains(where: isLetter), let last = n.utf8.last,
                last == 0x2E || last == 0x2D || last == 0x5F
            else { continue }
            var lo = 0, hi = sorted.count
            while lo < hi {
                let m = (lo + hi) / 2
                if utf8Less(sorted[m].0, n) { lo = m + 1 } else { hi = m }
            }
            while lo < sorted.count, sorted[lo].0.utf8.starts(with: n.utf8) {
                out.append((sorted[lo].1, n))
                lo += 1
            }
        }
        for (text, _) in f.suffixes {
            guard !text.hasPrefix("/") else { continue }  // a whole base name follows: found as a name
            let n = String(text.prefix { $0 != "/" && $0 != "?" && $0 != "#" })
            guard isName(n), let dot = n.utf8.lastIndex(of: 0x2E) else { continue }
            let e = String(n[n.utf8.index(after: dot)...])
            guard !e.isEmpty, let files = byExt[e] else { continue }
            if dot == n.utf8.startIndex {
                // Only an extension: the stem is a run-time value; the stems this script holds as
                // strings, and ids made of digits (webpack's `[id].js`), may be it.
                for (b, p) in files {
                    let stem = String(b.dropLast(e.count + 1))
                    if f.quoted.contains(stem) || (!stem.isEmpty && stem.utf8.allSatisfy { (48...57).contains($0) }) {
                        out.append((p, n))
                    }
                }
            } else {
                for (b, p) in files where b.hasSuffix(n) { out.append((p, n)) }
            }
        }
        return out
    }

    private func isLetter(_ b: UInt8) -> Bool { (65...90).contains(b) || (97...122).contains(b) }
    private func isName(_ s: String) -> Bool {
        !s.isEmpty
            && s.utf8.allSatisfy { (48...57).contains($0) || isLetter($0) || $0 == 0x2E || $0 == 0x2D || $0 == 0x5F }
    }
}
