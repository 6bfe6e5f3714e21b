import Dispatch
import Hashing
import OCI

/// A file of a frontend tree, its path relative to the asset root (no leading `/`). Its bytes
/// are in memory; or, for a binary file read from a folder (images, fonts: nothing in them is
/// rewritten), left on disk with their digests taken while reading (`onDisk`); or, for a text
/// file read from a folder, left on disk and read when they are needed (`textFile`). So a
/// large frontend costs no memory for its media, nor for its scripts beyond the one at hand.
public struct AssetFile: Sendable, Equatable {
    public struct OnDisk: Sendable, Equatable {
        /// Where the bytes are: `size` bytes from `offset` of this file.
        public var source: String
        public var offset: Int64 = 0
        /// Hex SHA-256, SRI value and size of the bytes.
        public var sha256: String
        public var sri: String
        public var size: Int
        /// The spool `source` names, kept open while the range is in use.
        public var spool: AssetSpool?
        public init(source: String, sha256: String, sri: String, size: Int) {
            self.source = source; self.sha256 = sha256; self.sri = sri; self.size = size
        }
        public static func == (a: OnDisk, b: OnDisk) -> Bool {
            a.source == b.source && a.offset == b.offset && a.sha256 == b.sha256 && a.sri == b.sri && a.size == b.size
        }
    }

    public var path: String
    /// The content, empty when `onDisk` or `textFile` is set.
    public var bytes: [UInt8]
    public var onDisk: OnDisk?
    /// A text file's path, read when its bytes are needed (`AssetTree.read(_:lazyText:)`).
    public var textFile: String?

    public init(path: String, bytes: [UInt8]) { self.path = path; self.bytes = bytes }
    public init(path: String, onDisk: OnDisk) { self.path = path; self.bytes = []; self.onDisk = onDisk }
    public init(path: String, textFile: String) { self.path = path; self.bytes = []; self.textFile = textFile }

    public var sha256Hex: String { onDisk?.sha256 ?? Digester.hex(bytes) }
    public var size: Int { onDisk?.size ?? bytes.count }
    public var sri: String { onDisk?.sri ?? AssetHasher.sri(bytes) }
}

public struct AssetOptions: Sendable {
    /// Hex digits of SHA-256 in a name.
    public var length = 8
    /// Extra globs of files that keep their names.
    public var keep: [Glob] = []
    /// Add `integrity` attributes to `<script src>` and `<link href>` in HTML.
    public var sri = false
    /// Name of the manifest written at the root.
    public var manifestName = "asset-manifest.json"
    /// Where renamed files' new bytes go as they are produced; nil keeps them in memory.
    public var spool: AssetSpool?
    /// Called with each output file as soon as its name and bytes are final (dependencies
    /// first, the manifest last), so it can be written while the rest is hashed.
    public var ready: (@Sendable (AssetFile) -> Void)?
    public init() {}

    /// Files that keep their names: documents a browser or crawler asks for by a fixed URL.
    public static let entryGlobs = ["*.html", "*.htm", "manifest.json", "*.webmanifest", "robots.txt", "favicon.ico",
                                    "sw.js", "service-worker.js", "**/service-workers/**", "version.json", ".well-known/**"].map(Glob.init)
}

public enum AssetError: Error, Equatable, CustomStringConvertible {
    case invalid(String)
    public var description: String {
        switch self { case .invalid(let m): return m }
    }
}

/// What hashing a tree produced.
public struct AssetResult: Sendable {
    /// The output tree (renamed, rewritten, with the manifest), sorted by path.
    public var files: [AssetFile]
    /// Original path → new path, for every file (the same for files that keep their names).
    public var renames: [String: String]
    /// Files outside the root, rewritten (same paths as given).
    public var extras: [AssetFile]
    /// The manifest's bytes (also in `files`).
    public var manifest: [UInt8]
}

/// Content-hashed names (`index.js` → `index.1a2b3c4d.js`) with every reference rewritten.
///
/// **The rule.** A renamed file's hash is the SHA-256 of its final bytes (references already
/// rewritten), so a name never serves two contents, and a file changes name when a file it
/// references does. Files are hashed dependencies first. Files that reference each other in a
/// cycle (a Vite chunk importing its entry, a script and its source map) are hashed together: the
/// group's digest is the SHA-256 over its members, sorted by path, of `path NUL bytes NUL`, where
/// each member's references to other members are written in their unhashed form; each member's
/// hash is then SHA-256 of `group digest NUL path`. A change to any member renames them all.
/// SHA-256, SRI (SHA-384, base64) and size of content that passes in pieces: what the manifest
/// and the hashed name need of a file whose bytes are not kept.
public final class ContentDigester {
    private let sha256 = Digester(.sha256), sha384 = Digester(.sha384)
    public private(set) var size = 0
    public init() {}
    public func update(_ buffer: UnsafeRawBufferPointer) {
        sha256.update(buffer)
        sha384.update(buffer)
        size += buffer.count
    }
    public var sri: String { "sha384-" + Base64.encode(sha384.finalizeBytes()) }
    /// The digests of the bytes seen, for a file that stays where `source` says.
    public func onDisk(source: String) -> AssetFile.OnDisk {
        AssetFile.OnDisk(source: source, sha256: sha256.finalizeHex(), sri: sri, size: size)
    }
}

/// Names that already carry a hash of this length (`x.1a2b3c4d.js`) have it replaced, never
/// added to, so hashing its own output changes nothing.
public enum AssetHasher {
    /// `input` is consumed: each file's bytes are let go once its output exists, so a large
    /// frontend is not held twice.
    public static func hash(_ input: consuming [AssetFile], extras: [AssetFile] = [], options: AssetOptions = .init()) throws -> AssetResult {
        var byPath: [String: [UInt8]] = [:]
        var onDisk: [String: AssetFile.OnDisk] = [:]
        // Text files left on disk: read to scan, let go, read again to rewrite (and checked to
        // be the same bytes both times).
        var textFiles: [String: String] = [:]
        var scannedDigest: [String: String] = [:]
        do {
            // The array goes when this block ends: `byPath` then holds the only reference.
            let files = consume input
            for f in files {
                guard let p = Path.clean(f.path), p == f.path, !p.isEmpty else { throw AssetError.invalid("\(f.path): not a clean relative path") }
                guard byPath[p] == nil else { throw AssetError.invalid("\(p): given twice") }
                guard f.onDisk == nil || AssetKind.of(p) == .binary else { throw AssetError.invalid("\(p): only binary files may stay on disk") }
                byPath[p] = f.bytes
                onDisk[p] = f.onDisk
                textFiles[p] = f.textFile
            }
        }
        byPath[options.manifestName] = nil // regenerated
        onDisk[options.manifestName] = nil
        textFiles[options.manifestName] = nil
        let paths = byPath.keys.sorted(by: utf8Less)
        let scanner = ReferenceScanner(files: Set(paths))
        let naming = Naming(length: options.length)

        func load(_ p: String) throws -> [UInt8] {
            guard let source = textFiles[p] else { return byPath[p]! }
            let bytes = try AssetTree.readFile(source)
            if let want = scannedDigest[p], Digester.hex(bytes) != want {
                throw AssetError.invalid("\(source): changed while stamp was reading the folder")
            }
            return bytes
        }

        // Which files get new names.
        var hashed = Set<String>()
        for p in paths where !isEntry(p, options) && !ext(p).isEmpty { hashed.insert(p) }
        // Two inputs that would get the same unhashed name (x.js and x.1a2b3c4d.js) collide.
        var unhashedOwner: [String: String] = [:]
        for p in hashed.sorted(by: utf8Less) {
            let u = naming.unhashed(p)
            if let other = unhashedOwner[u] { throw AssetError.invalid("\(other) and \(p) would both be named after \(u)") }
            unhashedOwner[u] = p
        }

        // References of every file, files scanned on all cores.
        var refs: [String: [Reference]] = [:]
        let scans = parallelMap(count: paths.count) { [byPath, textFiles] i -> Result<([Reference], String?), Error> in
            Result {
                let p = paths[i]
                let bytes = try textFiles[p].map { try AssetTree.readFile($0) } ?? byPath[p]!
                return (scanner.scan(bytes, path: p, kind: AssetKind.of(p)), textFiles[p] != nil ? Digester.hex(bytes) : nil)
            }
        }
        for (i, p) in paths.enumerated() {
            let (r, digest) = try scans[i].get()
            refs[p] = r
            scannedDigest[p] = digest
        }

        // Graph of hashed files → hashed files they reference; groups in dependency order.
        var edges: [String: [String]] = [:]
        for p in hashed { edges[p] = Array(Set((refs[p] ?? []).compactMap(\.target).filter { hashed.contains($0) })).sorted(by: utf8Less) }
        let groups = stronglyConnected(hashed.sorted(by: utf8Less), edges: edges)

        var newName: [String: String] = [:] // hashed file → new path
        var output: [String: [UInt8]] = [:]
        var spooled: [String: AssetFile.OnDisk] = [:]
        var outputSHA256: [String: String] = [:] // of renamed files' bytes in `output`
        /// A renamed file's new bytes: to the spool when there is one (binary files stay where
        /// they are); returns their SHA-256.
        func emit(_ p: String, _ bytes: [UInt8]) throws -> String {
            byPath[p] = nil
            if let d = onDisk[p] { output[p] = bytes; return d.sha256 }
            if let spool = options.spool {
                let d = try spool.append(bytes)
                spooled[p] = d
                return d.sha256
            }
            output[p] = bytes
            let hex = Digester.hex(bytes)
            outputSHA256[p] = hex
            return hex
        }
        func done(_ p: String) {
            guard let ready = options.ready else { return }
            ready((onDisk[p] ?? spooled[p]).map { AssetFile(path: newName[p]!, onDisk: $0) } ?? AssetFile(path: newName[p]!, bytes: output[p]!))
        }
        for group in groups {
            let cyclic = group.count > 1 || (edges[group[0]] ?? []).contains(group[0])
            if !cyclic {
                let p = group[0]
                let digest = try emit(p, rewrite(try load(p), refs[p]!, newName, naming))
                newName[p] = naming.name(p, hash: digest)
                done(p)
                continue
            }
            let members = Set(group)
            let d = Digester(.sha256)
            for p in group.sorted(by: utf8Less) {
                let normalized = rewrite(try load(p), refs[p]!, newName, naming, unhashing: members)
                d.update(Array(naming.unhashed(p).utf8) + [0])
                d.update(normalized)
                d.update([0])
            }
            let groupDigest = d.finalizeHex()
            for p in group { newName[p] = naming.name(p, hash: Digester.hex(Array((groupDigest + "\0" + naming.unhashed(p)).utf8))) }
            for p in group { _ = try emit(p, rewrite(try load(p), refs[p]!, newName, naming)); done(p) }
        }
        // Entry documents and unnamed files: rewritten, names kept, in memory (the HTML may
        // get integrity attributes below).
        var integrity: [String: String] = [:]
        for p in paths where !hashed.contains(p) {
            output[p] = rewrite(try load(p), refs[p]!, newName, naming)
            byPath[p] = nil
            newName[p] = p
        }
        if options.sri {
            for (q, b) in output where AssetKind.of(q) != .html { integrity[newName[q]!] = onDisk[q]?.sri ?? sri(b) }
            for (q, d) in spooled { integrity[newName[q]!] = d.sri }
            let finalScanner = ReferenceScanner(files: Set(newName.values))
            for p in paths where AssetKind.of(p) == .html && !hashed.contains(p) {
                output[p] = addIntegrity(output[p]!, path: p, scanner: finalScanner, integrity: integrity)
            }
        }

        for p in paths where !hashed.contains(p) { done(p) }
        // The output files and their manifest entries (digests of the files held in memory
        // taken here, the others have theirs), on all cores.
        let made = parallelMap(count: paths.count) { [onDisk, spooled, output, outputSHA256, newName, hashed] i -> (AssetFile, (String, JSONValue)?) in
            let p = paths[i], np = newName[p]!
            let f: AssetFile, d: AssetFile.OnDisk
            if let known = onDisk[p] ?? spooled[p] {
                f = AssetFile(path: np, onDisk: known)
                d = known
            } else {
                let bytes = output[p]!
                f = AssetFile(path: np, bytes: bytes)
                if let sha256 = outputSHA256[p] {
                    d = AssetFile.OnDisk(source: "", sha256: sha256, sri: sri(bytes), size: bytes.count)
                } else {
                    let c = ContentDigester()
                    bytes.withUnsafeBytes { c.update($0) }
                    d = c.onDisk(source: "")
                }
            }
            guard p != "version.json" else { return (f, nil) }
            // Keyed by the unhashed name, so hashing the output again writes the same manifest.
            return (f, (hashed.contains(p) ? naming.unhashed(p) : p, .object([
                ("integrity", .string(d.sri)), ("path", .string(np)), ("sha256", .string(d.sha256)), ("size", JSONValue(Int64(d.size))),
            ])))
        }
        var files = made.map(\.0)
        let manifestFiles = made.compactMap(\.1)
        let manifest = manifestBytes(manifestFiles, length: options.length)
        files.append(AssetFile(path: options.manifestName, bytes: manifest))
        options.ready?(files.last!)
        // Sorted by new path (an index sort: the files themselves are large to move).
        files = files.indices.sorted { utf8Less(files[$0].path, files[$1].path) }.map { files[$0] }

        return AssetResult(files: files, renames: newName, extras: rewriteExtras(extras, renames: newName, length: options.length),
                           manifest: manifest)
    }

    /// Files outside the root (server code that writes HTML) with their root-absolute
    /// references to the hashed tree rewritten: `renames` is `AssetResult.renames`, `length`
    /// the options' hash length.
    public static func rewriteExtras(_ extras: [AssetFile], renames: [String: String], length: Int) -> [AssetFile] {
        guard !extras.isEmpty else { return [] }
        let scanner = ReferenceScanner(files: Set(renames.keys)), naming = Naming(length: length)
        return extras.map { e in
            AssetFile(path: e.path, bytes: rewrite(e.bytes, scanner.scan(e.bytes, path: e.path, kind: .javascript, outsideRoot: true), renames, naming))
        }
    }

    static func isEntry(_ p: String, _ o: AssetOptions) -> Bool {
        let bytes = Array(p.utf8)[...]
        return p == o.manifestName || AssetOptions.entryGlobs.contains { $0.matches(bytes: bytes) } || o.keep.contains { $0.matches(bytes: bytes) }
    }

    /// Replaces each resolved reference's base name with its target's new one (or, for
    /// `unhashing` members, with the unhashed one), keeping the rest of the token as written.
    static func rewrite(_ bytes: [UInt8], _ refs: [Reference], _ names: [String: String], _ naming: Naming,
                        unhashing: Set<String> = []) -> [UInt8] {
        // Nothing to replace (images, fonts, most chunks): the same storage, not a copy.
        if !refs.contains(where: { r in r.target.map { unhashing.contains($0) || names[$0] != nil } ?? false }) { return bytes }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + refs.count * (naming.length + 1))
        var at = 0
        for r in refs {
            guard let t = r.target else { continue }
            let replacement: String
            if unhashing.contains(t) {
                replacement = naming.rebase(r.written, to: naming.unhashed(t))
            } else if let n = names[t] {
                replacement = naming.rebase(r.written, to: n)
            } else {
                continue
            }
            out.append(contentsOf: bytes[at..<r.range.lowerBound])
            out.append(contentsOf: Array(replacement.utf8))
            at = r.range.upperBound
        }
        out.append(contentsOf: bytes[at...])
        return out
    }

    static func addIntegrity(_ html: [UInt8], path: String, scanner: ReferenceScanner, integrity: [String: String]) -> [UInt8] {
        // For each <script ... src=X> and <link ... href=X> without integrity, insert integrity="..." after the tag name.
        var out: [UInt8] = []
        var i = 0
        let n = html.count
        while i < n {
            if html[i] == UInt8(ascii: "<"), let tagEnd = html[i...].firstIndex(of: UInt8(ascii: ">")) {
                let tag = String(decoding: html[i...tagEnd], as: UTF8.self)
                let lower = tag.lowercased()
                if (lower.hasPrefix("<script") || lower.hasPrefix("<link")) && !lower.contains("integrity=") {
                    let refs = scanner.scan(Array(tag.utf8), path: path, kind: .html)
                    if let t = refs.first(where: { $0.target != nil })?.target, let sri = integrity[t] {
                        let nameEnd = lower.hasPrefix("<script") ? 7 : 5
                        out.append(contentsOf: Array(tag.utf8.prefix(nameEnd)))
                        out.append(contentsOf: Array(" integrity=\"\(sri)\"".utf8))
                        out.append(contentsOf: Array(tag.utf8.dropFirst(nameEnd)))
                        i = tagEnd + 1
                        continue
                    }
                }
            }
            out.append(html[i])
            i += 1
        }
        return out
    }

    static func manifestBytes(_ entries: [(String, JSONValue)], length: Int) -> [UInt8] {
        JSONValue.encodePretty(.object([("algorithm", .string("sha256")), ("files", .object(entries)), ("length", JSONValue(Int64(length)))]))
    }

    /// Subresource Integrity value (sha384, base64).
    public static func sri(_ bytes: [UInt8]) -> String {
        "sha384-" + Base64.encode(Digester.bytes(bytes, .sha384))
    }

    /// Tarjan's strongly connected components, dependencies before dependents; deterministic
    /// for sorted input. Iterative: a chain of 100,000 imports is as deep as a stack gets.
    static func stronglyConnected(_ nodes: [String], edges: [String: [String]]) -> [[String]] {
        let n = nodes.count
        let id = Dictionary(uniqueKeysWithValues: nodes.enumerated().map { ($1, $0) })
        let adjacent: [[Int]] = nodes.map { (edges[$0] ?? []).compactMap { id[$0] } }
        var index = [Int](repeating: -1, count: n), low = [Int](repeating: 0, count: n)
        var onStack = [Bool](repeating: false, count: n)
        var stack: [Int] = [], calls: [(node: Int, next: Int)] = []
        var counter = 0
        var result: [[String]] = []
        func enter(_ v: Int) {
            index[v] = counter; low[v] = counter; counter += 1
            stack.append(v); onStack[v] = true
            calls.append((v, 0))
        }
        for root in 0..<n where index[root] < 0 {
            enter(root)
            while let (v, next) = calls.last {
                if next < adjacent[v].count {
                    calls[calls.count - 1].next += 1
                    let w = adjacent[v][next]
                    if index[w] < 0 { enter(w) } else if onStack[w] { low[v] = min(low[v], index[w]) }
                    continue
                }
                calls.removeLast()
                if let parent = calls.last?.node { low[parent] = min(low[parent], low[v]) }
                if low[v] == index[v] {
                    var group: [String] = []
                    while let w = stack.popLast() { onStack[w] = false; group.append(nodes[w]); if w == v { break } }
                    result.append(group.sorted(by: utf8Less))
                }
            }
        }
        return result
    }
}

/// `<stem>.<hash>.<ext>` names.
struct Naming: Sendable {
    let length: Int

    /// `a/b/x.1a2b3c4d.js` → `a/b/x.js`; other names unchanged.
    func unhashed(_ path: String) -> String {
        let u = path.utf8
        let baseStart = u.lastIndex(of: UInt8(ascii: "/")).map { u.index(after: $0) } ?? u.startIndex
        guard let lastDot = u[baseStart...].lastIndex(of: UInt8(ascii: ".")),
              let hashDot = u[baseStart..<lastDot].lastIndex(of: UInt8(ascii: ".")),
              isHash(u[u.index(after: hashDot)..<lastDot]) else { return path }
        return String(path[..<hashDot]) + String(path[lastDot...])
    }

    /// The new path of `path` for `hash` (a full hex digest).
    func name(_ path: String, hash: String) -> String {
        let u = unhashed(path)
        let (dir, base) = split(u)
        guard let dot = base.utf8.lastIndex(of: UInt8(ascii: ".")), dot != base.startIndex else { return path }
        return dir + base[..<dot] + "." + hash.prefix(length) + base[dot...]
    }

    /// A token as written with its base name replaced by `newPath`'s, encoding kept: the stem
    /// and extension come from the token, the hash from `newPath`.
    func rebase(_ written: String, to newPath: String) -> String {
        let (dir, base) = split(written)
        let newBase = split(newPath).1
        let stripped = unhashed(base)
        guard let dot = stripped.utf8.lastIndex(of: UInt8(ascii: ".")), dot != stripped.startIndex else { return dir + newBase }
        // The hash of `newBase` (`x.<hash>.js`), if it has one.
        let n = newBase.utf8
        if let lastDot = n.lastIndex(of: UInt8(ascii: ".")), let hashDot = n[..<lastDot].lastIndex(of: UInt8(ascii: ".")) {
            let hash = n[n.index(after: hashDot)..<lastDot]
            if isHash(hash) { return dir + stripped[..<dot] + "." + Substring(hash) + stripped[dot...] }
        }
        return dir + stripped
    }

    func isHash(_ s: Substring) -> Bool { isHash(s.utf8) }

    func isHash(_ bytes: Substring.UTF8View) -> Bool {
        bytes.count == length && bytes.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }

    func split(_ p: String) -> (String, String) {
        guard let slash = p.utf8.lastIndex(of: UInt8(ascii: "/")) else { return ("", p) }
        return (String(p[...slash]), String(p[p.utf8.index(after: slash)...]))
    }
}

