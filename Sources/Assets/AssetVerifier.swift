import Hashing
import IO
import OCI

/// Checks a hashed tree against its manifest (`AssetOptions.manifestName`): every file listed
/// with its bytes' size and digests, every name stamp gave matching what the rule in
/// `AssetHasher` gives for the bytes, every URL the browser fetches resolving, and no renamed
/// file's old name still in use. Findings are only what would break a page or a cache: a
/// quoted string that is not a URL is no finding.
public enum AssetVerifier {
    /// One finding per problem, each naming the file (`path`, relative to the folder).
    public static func verify(_ files: [AssetFile], options: AssetOptions = .init()) -> [Finding] {
        var findings: [Finding] = []
        let manifest = options.manifestName
        var file = FileTable(files)
        guard let mf = file[manifest] else {
            return [
                Finding(
                    .assetsManifestMissing,
                    "\(manifest): missing (the folder was not hashed by stamp, or --manifest names another file)",
                    path: manifest)
            ]
        }
        guard var entries = ManifestReader.entries(mf) else {
            return [Finding(.assetsManifestInvalid, "\(manifest): not a manifest stamp can read", path: manifest)]
        }
        file.remove(options.manifestName)
        let paths = file.paths
        var originals: [String: String] = [:]
        for (orig, e) in entries where e.stampHashed { originals[e.path] = orig }
        let naming = Naming(length: options.length, originals: originals)

        // The manifest against the files.
        var listed = [Bool](repeating: false, count: paths.count)
        for (orig, e) in entries {
            guard let k = file.index(of: e.path) else {
                findings.append(
                    Finding(
                        .assetsTargetMissing, "\(manifest): \(orig) maps to \(e.path), which is not in the folder",
                        path: e.path))
                continue
            }
            listed[k] = true
            let f = file[at: k]
            if e.size != f.size {
                findings.append(
                    Finding(
                        .assetsSizeMismatch, "\(e.path): has size \(f.size), \(manifest) says \(e.size)", path: e.path,
                        expected: "\(e.size)", found: "\(f.size)"))
            }
            if e.sha256 != f.sha256Hex {
                findings.append(
                    Finding(
                        .assetsSHA256Mismatch, "\(e.path): has sha256 \(f.sha256Hex), \(manifest) says \(e.sha256)",
                        path: e.path,
                        expected: e.sha256, found: f.sha256Hex))
            } else if e.integrity != f.sri {
                findings.append(
                    Finding(
                        .assetsIntegrityMismatch, "\(e.path): integrity differs from \(manifest)'s", path: e.path,
                        expected: e.integrity, found: f.sri))
            }
            if e.stampHashed, !isHashedName(e.path, of: orig, naming) {
                findings.append(
                    Finding(
                        .assetsNotHashedName,
                        "\(manifest): \(orig) maps to \(e.path), which is not a hashed name of it", path: e.path))
            }
        }
        // Only what the names need of the manifest is kept past this point.
        entries = []
        for (k, p) in paths.enumerated() where !listed[k] && p != "version.json" {
            findings.append(Finding(.assetsUnlisted, "\(p): not in \(manifest)", path: p))
        }

        // References, read as the hasher reads them.
        let read: Analysis.Reader = { [file] p in (try AssetTree.content(file[p]!), nil) }
        // Text too large to read whole is not rewritten by the hasher, nor read here.
        let oversized = Set(
            paths.filter { AssetKind.of($0) != .binary && file[$0]!.size > AssetTree.largestScanned })
        guard let refs = try? Analysis.references(paths: paths, skip: oversized, read: read).refs else {
            return findings + [Finding(.assetsUnreadable, "the folder could not be read again")]
        }
        let stampNamed = !originals.isEmpty
        for p in paths {
            for r in refs[p] ?? [] where r.target == nil {
                // A URL the browser fetches, or a name stamp gave, that names no file.
                let base = Path.basename(percentDecode(r.written))
                if r.context == .url || looksStampHashed(base, naming: naming, anyStampNamed: stampNamed) {
                    findings.append(
                        Finding(
                            .assetsUnresolvedReference, "\(p): reference \"\(r.written)\" does not resolve to a file",
                            path: p, found: r.written))
                }
            }
        }

        // Names stamp gave: recomputed from the bytes (files in a cycle as a group).
        let hashed = Set(paths.filter { originals[$0] != nil })
        var edges: [String: [String]] = [:]
        for p in hashed {
            edges[p] = Array(Set((refs[p] ?? []).compactMap(\.target).filter { hashed.contains($0) })).sorted(
                by: utf8Less)
        }
        for group in AssetHasher.stronglyConnected(hashed.sorted(by: utf8Less), edges: edges) {
            let cyclic = group.count > 1 || (edges[group[0]] ?? []).contains(group[0])
            var expected: [String: String] = [:]
            if !cyclic {
                expected[group[0]] = file[group[0]]!.sha256Hex
            } else {
                let members = Set(group)
                let d = Digester(.sha256)
                for p in group.sorted(by: utf8Less) {
                    let bytes = (try? AssetTree.content(file[p]!)) ?? []
                    let normalized = AssetHasher.rewrite(bytes, refs[p] ?? [], { _ in nil }, naming, unhashing: members)
                    d.update(Array(naming.unhashed(p).utf8) + [0])
                    d.update(normalized)
                    d.update([0])
                }
                let g = d.finalizeHex()
                for p in group { expected[p] = Digester.hex(Array((g + "\0" + naming.unhashed(p)).utf8)) }
            }
            for p in group {
                let want = naming.name(p, hash: expected[p]!)
                if want != p {
                    findings.append(
                        Finding(
                            .assetsNameMismatch,
                            "\(p): name does not match its content (it should be \(Path.basename(want)))", path: p,
                            expected: want, found: p))
                }
            }
        }

        // Old names still in use: a renamed file's former name anywhere outside a reference
        // that resolves.
        let renamedFrom = originals.filter { $0.key != $0.value }.map { ($0.value, $0.key) }.sorted {
            utf8Less($0.0, $1.0)
        }
        if !renamedFrom.isEmpty {
            let old = renamedFrom.map(\.0)
            let finder = NameFinder(paths: old, watched: Array(old.indices))
            let matcher = FragmentMatcher(paths: old)
            for p in paths where AssetKind.of(p) != .binary {
                // Each name once, where it first is; and the names it may build.
                var hits: [NameFinder.Hit] = []
                var built: [(String, String)] = []
                let kind = AssetKind.of(p)
                if oversized.contains(p), let source = TextSource(file[p]!) {
                    // Not rewritten, so every name in it is unaccounted for; read in pieces.
                    guard
                        let found = try? finder.firstHits(
                            in: source.windows, names: true, script: false,
                            matcher: kind == .javascript || kind == .html ? matcher : nil)
                    else { continue }
                    (hits, built) = found
                } else {
                    guard let bytes = try? AssetTree.content(file[p]!) else { continue }
                    hits = finder.unaccounted(in: bytes, refs: refs[p] ?? [], paths: old)
                    if kind == .javascript || kind == .html { built = matcher.matches(Fragments(bytes)) }
                }
                var seen = Set<Int>()
                for h in hits.sorted(by: { $0.at < $1.at }) where seen.insert(h.file).inserted {
                    findings.append(
                        Finding(
                            .assetsStaleName,
                            "\(p): still names \(old[h.file]) at byte \(h.at), but it was renamed "
                                + "\(renamedFrom[h.file].1)",
                            path: p, expected: renamedFrom[h.file].1, found: old[h.file]))
                }
                for (o, fragment) in built {
                    findings.append(
                        Finding(
                            .assetsRuntimeName,
                            "\(p): may build the name \(o) at run time (from \"\(fragment)\"), but it was renamed",
                            path: p, found: o))
                }
            }
        }
        return findings
    }

    /// `path` is `orig` with `.` and `length` hex digits before its extension.
    static func isHashedName(_ path: String, of orig: String, _ naming: Naming) -> Bool {
        let shape = Array(naming.name(orig, hash: String(repeating: "0", count: 64)).utf8), p = Array(path.utf8)
        guard shape.count == p.count, let dot = shape.lastIndex(of: 0x2E), dot >= naming.length else { return false }
        let hash = (dot - naming.length)..<dot
        for i in p.indices where !hash.contains(i) && p[i] != shape[i] { return false }
        return p[hash].allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }

    /// `x.1a2b3c4d.js` where stamp gave names of this form: a rewritten reference.
    static func looksStampHashed(_ base: String, naming: Naming, anyStampNamed: Bool) -> Bool {
        guard anyStampNamed, let dot = base.utf8.lastIndex(of: 0x2E) else { return false }
        let stem = base[..<dot]
        guard let hashDot = stem.utf8.lastIndex(of: 0x2E) else { return false }
        let hash = stem[stem.utf8.index(after: hashDot)...]
        return hash.utf8.count == naming.length
            && hash.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }
}

/// The files of a tree sorted by path, found by binary search: a table of 100,000 files with no
/// dictionary beside it. The last of two files given the same path is the one kept.
struct FileTable: Sendable {
    private var files: [AssetFile]
    init(_ given: [AssetFile]) {
        let order = given.indices.sorted { a, b in
            utf8Less(given[a].path, given[b].path) || (given[a].path == given[b].path && a > b)
        }
        var files: [AssetFile] = []
        files.reserveCapacity(given.count)
        for i in order where files.last?.path != given[i].path { files.append(given[i]) }
        self.files = files
    }
    private func find(_ path: String) -> Int? { indexSorted(files, of: path, key: \.path) }
    subscript(_ path: String) -> AssetFile? { find(path).map { files[$0] } }
    /// The index of `path` in `paths`.
    func index(of path: String) -> Int? { find(path) }
    subscript(at k: Int) -> AssetFile { files[k] }
    mutating func remove(_ path: String) { if let i = find(path) { files.remove(at: i) } }
    var paths: [String] { files.map(\.path) }
}

/// Reads an asset manifest (JSON: `files` → original path → `path`, `size`, `sha256`,
/// `integrity`, and since the cache policy: `cache`, `hash`, `kept`).
enum ManifestReader {
    struct Entry {
        var path: String
        var size: Int
        /// `sha256` and `integrity` held as 80 bytes when they are what stamp writes (lowercase
        /// hex, padded base64), else as written (`asWritten`): a manifest of 100,000 entries.
        private var digests: ContentDigests
        private var asWritten: AsWritten?
        /// Renamed by stamp (`hash: stamp`; in a manifest from before, any entry whose path differs).
        var stampHashed: Bool

        final class AsWritten: Sendable {
            let sha256: String, integrity: String
            init(_ sha256: String, _ integrity: String) {
                self.sha256 = sha256
                self.integrity = integrity
            }
        }

        init(path: String, size: Int, sha256: String, integrity: String, stampHashed: Bool) {
            self.path = path
            self.size = size
            self.stampHashed = stampHashed
            if let d = ContentDigests(sha256Hex: sha256, sri: integrity), d.sha256Hex == sha256, d.sri == integrity {
                digests = d
                asWritten = nil
            } else {
                digests = ContentDigests(of: [])
                asWritten = AsWritten(sha256, integrity)
            }
        }

        var sha256: String { asWritten?.sha256 ?? digests.sha256Hex }
        var integrity: String { asWritten?.integrity ?? digests.sri }
    }

    /// The entries by original path, sorted by it (by bytes), each key once.
    typealias Entries = [(key: String, value: Entry)]

    static func entries(_ bytes: [UInt8]) -> Entries? {
        entries(size: bytes.count) { at, n in Array(bytes[at..<at + n]) }
    }

    /// The manifest a file holds, read in pieces of 1 MiB wherever its bytes are.
    static func entries(_ f: AssetFile) -> Entries? {
        guard let source = TextSource(f) else {
            return f.onDisk == nil ? entries(f.bytes) : nil
        }
        return entries(size: source.size) { at, n in try source.read(at: at, count: n) }
    }

    /// The largest value of the manifest read whole (an entry, a top-level member other than
    /// `files`): a manifest is streamed entry by entry, never held in memory, and a value
    /// larger than this is no manifest stamp wrote.
    static let largestValue = 1 << 20

    /// Reads the manifest streamed (a tree of 100,000 files has a manifest of 33 MB): the
    /// punctuation of the top object and of `files` is checked here, each value in them is
    /// parsed whole by the JSON parser. nil when it is not valid JSON or not a manifest.
    static func entries(size: Int, read: @escaping (Int, Int) throws -> [UInt8]) -> Entries? {
        let input = PieceReader(size: size, read: read)
        var algorithm: String?, generator: String?
        // Each entry as it is read: what makes it stamp-hashed may come after `files`.
        var read: [(String, Entry, hash: String?)] = []
        do {
            try input.object { key in
                if key == "files" {
                    read = []
                    try input.object { name in
                        let e = try input.value(limit: largestValue)
                        guard let path = e["path"]?.stringValue, let size = e["size"]?.int64Value,
                            let sha = e["sha256"]?.stringValue,
                            let integrity = e["integrity"]?.stringValue, size >= 0, size <= Int64(Int32.max) * 1024
                        else { throw PieceReader.Invalid() }
                        read.append(
                            (
                                name,
                                Entry(
                                    path: path, size: Int(size), sha256: sha, integrity: integrity, stampHashed: false),
                                e["hash"]?.stringValue
                            ))
                    }
                } else {
                    let v = try input.value(limit: largestValue)
                    if key == "algorithm" { algorithm = v.stringValue }
                    if key == "generator" { generator = v.stringValue }
                }
            }
            input.skipSpace()
            guard try input.peek() == nil else { return nil }
        } catch { return nil }
        guard algorithm == "sha256" else { return nil }
        let current = generator == "stamp"
        // Sorted by key, the later of two equal keys first: the last of each key is kept, as a
        // JSON object's reader keeps it.
        let order = read.indices.sorted { a, b in
            let x = read[a].0, y = read[b].0
            return utf8Less(x, y) || (x == y && a > b)
        }
        var out: Entries = []
        out.reserveCapacity(read.count)
        for i in order {
            if let last = out.last, last.key == read[i].0 { continue }
            var e = read[i].1
            e.stampHashed = current ? read[i].hash == "stamp" : e.path != read[i].0
            out.append((read[i].0, e))
        }
        return out
    }
}

/// JSON read in pieces: the members of an object one at a time, each value taken whole (its
/// bytes found by their brackets and quotes) and parsed by `JSONValue.parse`, so no more than
/// one value is in memory.
final class PieceReader {
    struct Invalid: Error {}
    let size: Int
    let read: (Int, Int) throws -> [UInt8]
    private var buffer: [UInt8] = []
    private var bufferStart = 0
    private(set) var at = 0

    init(size: Int, read: @escaping (Int, Int) throws -> [UInt8]) {
        self.size = size
        self.read = read
    }

    func peek() throws -> UInt8? {
        if at >= size { return nil }
        if at >= bufferStart + buffer.count {
            bufferStart = at
            buffer = try read(at, min(1 << 20, size - at))
            guard !buffer.isEmpty else { throw Invalid() }
        }
        return buffer[at - bufferStart]
    }

    func take() throws -> UInt8 {
        guard let c = try peek() else { throw Invalid() }
        at += 1
        return c
    }

    func skipSpace() {
        while let c = try? peek(), c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 { at += 1 }
    }

    func expect(_ c: UInt8) throws {
        skipSpace()
        guard try take() == c else { throw Invalid() }
    }

    /// `{ "key": value, … }`: calls `member` with each key, which must read the value.
    func object(_ member: (String) throws -> Void) throws {
        try expect(UInt8(ascii: "{"))
        skipSpace()
        if try peek() == UInt8(ascii: "}") {
            at += 1
            return
        }
        while true {
            skipSpace()
            guard try peek() == UInt8(ascii: "\""), let key = try value(limit: MaxKey.bytes).stringValue else {
                throw Invalid()
            }
            try expect(UInt8(ascii: ":"))
            skipSpace()
            try member(key)
            skipSpace()
            switch try take() {
            case UInt8(ascii: ","): continue
            case UInt8(ascii: "}"): return
            default: throw Invalid()
            }
        }
    }

    enum MaxKey { static let bytes = 64 << 10 }

    /// The next value whole (at most `limit` bytes), parsed.
    func value(limit: Int) throws -> JSONValue {
        skipSpace()
        var bytes: [UInt8] = []
        var depth = 0, inString = false, escaped = false
        func add(_ c: UInt8) throws {
            guard bytes.count < limit else { throw Invalid() }
            bytes.append(c)
            at += 1
        }
        while let c = try peek() {
            if inString {
                try add(c)
                if escaped {
                    escaped = false
                } else if c == UInt8(ascii: "\\") {
                    escaped = true
                } else if c == UInt8(ascii: "\"") {
                    inString = false
                    if depth == 0 { break }
                }
                continue
            }
            switch c {
            case UInt8(ascii: "\""):
                inString = true
                try add(c)
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                depth += 1
                try add(c)
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                guard depth > 0 else { return try JSONValue.parse(bytes) }
                depth -= 1
                try add(c)
                if depth == 0 { return try JSONValue.parse(bytes) }
            case UInt8(ascii: ","), 0x20, 0x0A, 0x0D, 0x09:
                if depth == 0 { return try JSONValue.parse(bytes) }
                try add(c)
            default: try add(c)
            }
        }
        return try JSONValue.parse(bytes)
    }
}
