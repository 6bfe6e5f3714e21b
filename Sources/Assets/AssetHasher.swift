import Dispatch
import Glibc
import Failures
import Hashing
import IO
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
        /// The source's identity when its digests were taken (`AssetTree.identity`).
        public var identity: String?
        public init(source: String, sha256: String, sri: String, size: Int) {
            self.source = source
            self.sha256 = sha256
            self.sri = sri
            self.size = size
        }
        public static func == (a: OnDisk, b: OnDisk) -> Bool {
            a.source == b.source && a.offset == b.offset && a.sha256 == b.sha256 && a.sri == b.sri && a.size == b.size
        }
    }

    public var path: String
    /// The content, empty when `onDisk` or `textFile` is set.
    public var bytes: [UInt8]
    /// Where the bytes are when they are not in memory, boxed: most files of a tree are in
    /// memory, and a frontend of 100,000 files would otherwise carry two inline `OnDisk`s each.
    private final class Place: Sendable {
        let onDisk: OnDisk?, textFile: String?, spooledText: OnDisk?
        init(onDisk: OnDisk? = nil, textFile: String? = nil, spooledText: OnDisk? = nil) {
            self.onDisk = onDisk
            self.textFile = textFile
            self.spooledText = spooledText
        }
    }
    private let place: Place?
    /// A binary file's bytes, left where they are, with their digests.
    public var onDisk: OnDisk? { place?.onDisk }
    /// A text file's path, read when its bytes are needed (`AssetTree.read(_:lazyText:)`).
    public var textFile: String? { place?.textFile }
    /// A text file's bytes in a spool (a layer's frontend, streamed there as the layer was
    /// read), with their digests: read when needed, like `textFile`.
    public var spooledText: OnDisk? { place?.spooledText }

    public init(path: String, bytes: [UInt8]) {
        self.path = path
        self.bytes = bytes
        place = nil
    }
    public init(path: String, onDisk: OnDisk) {
        self.path = path
        self.bytes = []
        place = Place(onDisk: onDisk)
    }
    public init(path: String, textFile: String) {
        self.path = path
        self.bytes = []
        place = Place(textFile: textFile)
    }
    public init(path: String, spooledText: OnDisk) {
        self.path = path
        self.bytes = []
        place = Place(spooledText: spooledText)
    }

    public static func == (a: AssetFile, b: AssetFile) -> Bool {
        a.path == b.path && a.bytes == b.bytes && a.onDisk == b.onDisk && a.textFile == b.textFile
            && a.spooledText == b.spooledText
    }

    /// Where the bytes are, when not in memory (binary on disk, or spooled text).
    public var stored: OnDisk? { onDisk ?? spooledText }
    public var sha256Hex: String { stored?.sha256 ?? Digester.hex(bytes) }
    public var size: Int { stored?.size ?? bytes.count }
    public var sri: String { stored?.sri ?? AssetHasher.sri(bytes) }
}

public struct AssetOptions: Sendable {
    /// Hex digits of SHA-256 in a name.
    public var length = 8
    /// Extra globs of files that keep their names.
    public var keep: [Glob] = []
    /// Add `integrity` attributes to `<script src>` and `<link href>` in HTML.
    public var sri = false
    /// Name of the manifest written at the root: stamp's own, a name no bundler or server uses
    /// (an `asset-manifest.json` of create-react-app, or Vite's `.vite/manifest.json`, is a file of
    /// the frontend like any other: kept and rewritten in place).
    public var manifestName = AssetOptions.defaultManifest
    public static let defaultManifest = "stamp-assets.json"
    /// Where renamed files' new bytes go as they are produced; nil keeps them in memory.
    public var spool: AssetSpool?
    /// Called with each output file as soon as its name and bytes are final (dependencies
    /// first, the manifest last), so it can be written while the rest is hashed.
    public var ready: (@Sendable (AssetFile) -> Void)?
    public init() {}
}

public enum AssetError: KindedError, Equatable {
    case invalid(String)
    public var description: String {
        switch self {
        case .invalid(let m): return m
        }
    }
    public var kind: ErrorKind { .badInput }
}

/// What hashing a tree produced.
public struct AssetResult: Sendable {
    /// The output tree (renamed, rewritten, with the manifest), sorted by path.
    public var files: [AssetFile]
    /// For each of `files`, the input path it was made from (nil for the manifest).
    public var sources: [String?]
    /// For each of `files`, whether it is its input unchanged: same name, same bytes.
    public var unchanged: [Bool]
    /// Original path → new path, for every file (the same for files that keep their names).
    public var renames: [String: String] {
        var out: [String: String] = [:]
        for (s, f) in zip(sources, files) { if let s { out[s] = f.path } }
        return out
    }
    /// Files outside the root, rewritten (same paths as given).
    public var extras: [AssetFile]
    /// The manifest (also in `files`): in the spool when the options gave one, else in memory.
    public var manifestFile: AssetFile
    /// The manifest's bytes, read back from the spool when it is there.
    public func manifestBytes() throws -> [UInt8] {
        guard let d = manifestFile.stored else { return manifestFile.bytes }
        return try AssetTree.readFile(d.source, offset: d.offset, count: d.size)
    }
    /// Original path → why it keeps its name, for every file that does (bundler-hashed files
    /// included: "named by its bundler").
    public var kept: [String: String] = [:]
}

/// The paths of a tree, sorted, each with its index: what per-file arrays are indexed by.
struct PathTable: Sendable {
    let paths: [String]
    private let index: [String: Int]
    init(_ paths: [String]) {
        self.paths = paths
        var index: [String: Int] = [:]
        index.reserveCapacity(paths.count)
        for (i, p) in paths.enumerated() { index[p] = i }
        self.index = index
    }
    subscript(_ path: String) -> Int? { index[path] }
}

/// Content-hashed names (`index.js` → `index.1a2b3c4d.js`) with every reference rewritten,
/// and a working frontend left working.
///
/// **What is renamed.** A file is renamed only when stamp has proven that every use of its name
/// is a reference it rewrites: after the references are found, every text file of the tree (and
/// the server files given as `extras`) is searched for the name, its percent-encoded form, its
/// hash part and its AMD module id; any place that is not such a reference (a template literal,
/// a string compared at run time, a webpack chunk map, a server template), or a literal that may
/// build the name at run time (`lunr.${lang}.min.js`), keeps the file's name. Pages, favicons,
/// sitemaps, feeds, service workers and other fixed-URL files keep theirs (`Policy`); so do
/// files the bundler already named after their content, as long as their bytes stay the same.
///
/// **Merkle rule.** A renamed file's hash is the SHA-256 of its final bytes (references already
/// rewritten), so a name never serves two contents, and a file changes name when a file it
/// references does: a bundler-named file whose references change is renamed too
/// (`x-BjL3nRWm.js` → `x-BjL3nRWm.1a2b3c4d.js`); if its name cannot change, neither can the
/// names it references. This is iterated to a fixed point. Files are hashed dependencies first.
/// Files that reference each other in a cycle (a Vite chunk importing its entry, a script and
/// its source map) are hashed together: the group's digest is the SHA-256 over its members,
/// sorted by path, of `path NUL bytes NUL`, where each member's references to other members are
/// written in their unhashed form; each member's hash is then SHA-256 of `group digest NUL path`.
/// A change to any member renames them all.
///
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

/// Where a text file that is not held in memory is read from when needed.
enum TextSource: Sendable {
    /// A file of a folder, checked by its identity not to change between reads.
    case file(String)
    /// A range of stamp's own spool.
    case spooled(AssetFile.OnDisk)

    init?(_ f: AssetFile) {
        if let t = f.textFile {
            self = .file(t)
        } else if let d = f.spooledText {
            self = .spooled(d)
        } else {
            return nil
        }
    }

    func read() throws -> [UInt8] {
        switch self {
        case .file(let p): return try AssetTree.readFile(p)
        case .spooled(let d): return try AssetTree.readFile(d.source, offset: d.offset, count: d.size)
        }
    }

    /// Its size (the file's now, the spooled range's).
    var size: Int {
        switch self {
        case .file(let p):
            var st = stat()
            return stat(p, &st) == 0 ? Int(st.st_size) : 0
        case .spooled(let d): return d.size
        }
    }

    /// Calls `body` with the bytes in pieces of `AssetTree.window`, each overlapping the one
    /// before by `AssetTree.windowOverlap`, and the offset of each in the whole.
    func windows(_ body: ([UInt8], Int) throws -> Void) throws {
        let (path, start, total) = {
            switch self {
            case .file(let p): return (p, Int64(0), size)
            case .spooled(let d): return (d.source, d.offset, d.size)
            }
        }()
        var at = 0
        while at < total {
            let n = min(AssetTree.window, total - at)
            try body(try AssetTree.readFile(path, offset: start + Int64(at), count: n), at)
            if at + n >= total { break }
            at += n - AssetTree.windowOverlap
        }
    }

    /// `count` bytes from `at`.
    func read(at: Int, count: Int) throws -> [UInt8] {
        switch self {
        case .file(let p): return try AssetTree.readFile(p, offset: Int64(at), count: count)
        case .spooled(let d): return try AssetTree.readFile(d.source, offset: d.offset + Int64(at), count: count)
        }
    }

    /// The folder file's identity now (nil for the spool, which only stamp writes).
    var identity: String? {
        if case .file(let p) = self { return AssetTree.identity(p) }
        return nil
    }

    var name: String {
        switch self {
        case .file(let p): return p
        case .spooled(let d): return d.source
        }
    }
}

/// Names stamp gave in an earlier run (listed in its manifest) have their hash replaced, never
/// added to, so hashing its own output changes nothing.
public enum AssetHasher {
    /// `input` is consumed: each file's bytes are let go once its output exists, so a large
    /// frontend is not held twice.
    public static func hash(_ input: consuming [AssetFile], extras: [AssetFile] = [], options: AssetOptions = .init())
        throws -> AssetResult
    {
        // Every fact of a file is kept by its index in `paths` (sorted by bytes), in arrays: a
        // frontend of 100,000 files must not cost a String-keyed dictionary per fact.
        var collected: [String] = []
        var content: [[UInt8]] = []
        // The few files not in memory, by index.
        var onDisk: [Int: AssetFile.OnDisk] = [:]
        // Text files left on disk: read to scan, let go, read again to rewrite (and checked to
        // be the same file each time, by its identity).
        var textFiles: [Int: TextSource] = [:]
        var earlier: AssetFile?
        do {
            // The array goes when this block ends: `content` then holds the only reference.
            let files = consume input
            // Swift's String equality is canonical: an NFC and an NFD spelling of a name are one
            // member. They are two files to a file system and a browser: refused.
            var seen = Set<String>(minimumCapacity: files.count)
            for f in files {
                let p = f.path
                guard let c = Path.clean(p), c == p, !p.isEmpty else {
                    throw AssetError.invalid("\(p): not a clean relative path")
                }
                if let i = seen.firstIndex(of: p) {
                    let other = seen[i]
                    if !other.utf8.elementsEqual(p.utf8) {
                        throw AssetError.invalid(
                            "\(String(reflecting: other)) and \(String(reflecting: p)): two file names that differ "
                                + "only in Unicode normalisation (NFC/NFD); rename one"
                        )
                    }
                    throw AssetError.invalid("\(p): given twice")
                }
                seen.insert(p)
                guard f.onDisk == nil || AssetKind.of(p) == .binary else {
                    throw AssetError.invalid("\(p): only binary files may stay on disk")
                }
            }
            seen = []
            let order = files.indices.sorted { utf8Less(files[$0].path, files[$1].path) }
            collected.reserveCapacity(files.count)
            content.reserveCapacity(files.count)
            for k in order {
                let f = files[k]
                // The manifest of an earlier run is made anew; it tells which names stamp gave.
                if f.path == options.manifestName {
                    earlier = f
                    continue
                }
                if let d = f.onDisk { onDisk[collected.count] = d }
                if let t = TextSource(f) { textFiles[collected.count] = t }
                collected.append(f.path)
                content.append(f.bytes)
            }
        }
        let paths = collected
        collected = []
        var originals: [String: String] = [:]
        if let earlier {
            guard earlier.onDisk == nil, let entries = ManifestReader.entries(earlier) else {
                throw AssetError.invalid(
                    "\(options.manifestName): the folder has a file of this name that is not stamp's manifest; choose "
                        + "another name (--manifest)"
                )
            }
            for (orig, e) in entries where e.stampHashed { originals[e.path] = orig }
        }
        let count = paths.count
        let table = PathTable(paths)
        let naming = Naming(length: options.length, originals: originals)
        var scannedIdentity: [Int: String] = [:]

        func load(_ i: Int) throws -> [UInt8] {
            guard let source = textFiles[i] else { return content[i] }
            let bytes = try source.read()
            if let want = scannedIdentity[i], source.identity != want {
                throw AssetError.invalid("\(source.name): changed while stamp was reading the folder")
            }
            return bytes
        }

        var role = paths.map { Policy.role($0, keep: options.keep, stampHashed: originals[$0] != nil) }
        // Text too large to read whole: kept as it is (see `AssetTree.largestScanned`).
        var oversized = Set<String>()
        for (i, t) in textFiles where t.size > AssetTree.largestScanned {
            oversized.insert(paths[i])
            // Its identity before the name search, checked again when it is copied.
            if case .file = t, let id = t.identity { scannedIdentity[i] = id }
            role[i] = .verbatim(
                "larger than \(AssetTree.largestScanned >> 20) MiB: copied as it is; the files it names keep their names"
            )
        }
        var analysis: Analysis? = try Analysis(
            table: table, role: role, extras: extras, naming: naming, oversized: oversized,
            windows: { [textFiles, table] p, body in try textFiles[table[p]!]!.windows(body) }
        ) { [content, textFiles, table] p in
            let i = table[p]!
            let bytes = try textFiles[i].map { try $0.read() } ?? content[i]
            return (bytes, textFiles[i]?.identity)
        }
        for (p, d) in analysis!.identities { scannedIdentity[table[p]!] = d }
        // References by index; the analysis keeps only why files keep their names.
        var refs = [[Reference]](repeating: [], count: count)
        for (p, r) in analysis!.refs { refs[table[p]!] = r }
        analysis!.refs = [:]
        var isHashed = [Bool](repeating: false, count: count)
        for p in analysis!.renamed { isHashed[table[p]!] = true }
        let reasons = analysis!.kept
        let detail = analysis!.detail
        analysis = nil

        // Two inputs that would get the same unhashed name (x.js and an earlier run's x.1a2b3c4d.js) collide.
        if !originals.isEmpty {
            var unhashedOwner: [String: String] = [:]
            for i in 0..<count where isHashed[i] {
                let p = paths[i], u = naming.unhashed(p)
                if let other = unhashedOwner[u] {
                    throw AssetError.invalid("\(other) and \(p) would both be named after \(u)")
                }
                unhashedOwner[u] = p
            }
        }

        // Graph of hashed files → hashed files they reference; groups in dependency order.
        let hashedIndices = (0..<count).filter { isHashed[$0] }
        var groups: [[Int]] = []
        var selfReferencing = Set<Int>()
        do {
            var node = [Int32](repeating: -1, count: count)
            for (k, i) in hashedIndices.enumerated() { node[i] = Int32(k) }
            let adjacent: [[Int]] = hashedIndices.map { i in
                var out = Set<Int>()
                for r in refs[i] {
                    if let t = r.target, let j = table[t], node[j] >= 0 { out.insert(Int(node[j])) }
                }
                return out.sorted()
            }
            for (k, i) in hashedIndices.enumerated() where adjacent[k].contains(k) { selfReferencing.insert(i) }
            groups = stronglyConnected(count: hashedIndices.count, adjacent: adjacent).map { g in
                g.map { hashedIndices[$0] }.sorted()
            }
        }

        var newName = [String](repeating: "", count: count)
        var output = [[UInt8]](repeating: [], count: count)
        var spooled: [Int: AssetFile.OnDisk] = [:]
        // Whether a file's output bytes are its input's.
        var sameBytes = [Bool](repeating: false, count: count)
        func names(_ t: String) -> String? { table[t].flatMap { newName[$0].isEmpty ? nil : newName[$0] } }
        /// A renamed file's new bytes: to the spool when there is one (binary files stay where
        /// they are); returns their SHA-256.
        func emit(_ i: Int, _ bytes: [UInt8], original: [UInt8]) throws -> String {
            content[i] = []
            if let d = onDisk[i] {
                sameBytes[i] = true
                return d.sha256
            }
            sameBytes[i] = bytes == original
            if let spool = options.spool, bytes.count >= AssetTree.largeFile {
                let d = try spool.append(bytes)
                spooled[i] = d
                return d.sha256
            }
            output[i] = bytes
            return Digester.hex(bytes)
        }
        func done(_ i: Int) {
            guard let ready = options.ready else { return }
            ready(
                (onDisk[i] ?? spooled[i]).map { AssetFile(path: newName[i], onDisk: $0) }
                    ?? AssetFile(path: newName[i], bytes: output[i]))
        }
        // Binary files that keep their names are final now: the writer copies them while the
        // rest is hashed.
        var handedOver = [Bool](repeating: false, count: count)
        for (i, _) in onDisk where !isHashed[i] {
            newName[i] = paths[i]
            sameBytes[i] = true
            handedOver[i] = true
        }
        for i in 0..<count where handedOver[i] { done(i) }
        for group in groups {
            let cyclic = group.count > 1 || selfReferencing.contains(group[0])
            if !cyclic {
                let i = group[0]
                let original = try load(i)
                let digest = try emit(i, rewrite(original, refs[i], names, naming), original: original)
                newName[i] = naming.name(paths[i], hash: digest)
                done(i)
                continue
            }
            let members = Set(group.map { paths[$0] })
            let d = Digester(.sha256)
            for i in group {
                let normalized = rewrite(try load(i), refs[i], names, naming, unhashing: members)
                d.update(Array(naming.unhashed(paths[i]).utf8) + [0])
                d.update(normalized)
                d.update([0])
            }
            let groupDigest = d.finalizeHex()
            for i in group {
                newName[i] = naming.name(
                    paths[i], hash: Digester.hex(Array((groupDigest + "\0" + naming.unhashed(paths[i])).utf8)))
            }
            for i in group {
                let original = try load(i)
                _ = try emit(i, rewrite(original, refs[i], names, naming), original: original)
                done(i)
            }
        }
        groups = []
        // A new name that an input file already has would overwrite it.
        for i in hashedIndices {
            if let j = table[newName[i]], !isHashed[j] {
                throw AssetError.invalid(
                    "\(paths[i]) would be renamed \(newName[i]), which is the name of another file")
            }
        }
        // Files that keep their names, on all cores: rewritten (unless verbatim); pages stay in
        // memory (integrity attributes may be added); other text read from a folder is copied
        // from there when unchanged and spooled when rewritten, so a large frontend is not held
        // in memory.
        let keptIndices = (0..<count).filter { !isHashed[$0] }
        for i in keptIndices { newName[i] = paths[i] }
        enum Kept { case bytes([UInt8], same: Bool), stored(AssetFile.OnDisk, same: Bool) }
        try parallelBatches(count: keptIndices.count) {
            [content, textFiles, onDisk, scannedIdentity, refs, newName, role, oversized, spool = options.spool, table]
            k -> Result<Kept, Error> in
            Result {
                let i = keptIndices[k], p = paths[i]
                func names(_ t: String) -> String? { table[t].flatMap { newName[$0].isEmpty ? nil : newName[$0] } }
                // Too large to read whole: its bytes as they are, digests taken in pieces.
                if oversized.contains(p) {
                    switch textFiles[i]! {
                    case .spooled(let d): return .stored(d, same: true)
                    case .file(let source):
                        let d = try AssetTree.digests(source)
                        if let want = scannedIdentity[i], d.identity != want {
                            throw AssetError.invalid("\(source): changed while stamp was reading the folder")
                        }
                        return .stored(d, same: true)
                    }
                }
                var original = content[i]
                if let source = textFiles[i] {
                    original = try source.read()
                    if let want = scannedIdentity[i], source.identity != want {
                        throw AssetError.invalid("\(source.name): changed while stamp was reading the folder")
                    }
                }
                var bytes = original
                if case .verbatim = role[i] {} else { bytes = rewrite(original, refs[i], names, naming) }
                let same = onDisk[i] != nil || bytes == original
                guard onDisk[i] == nil, AssetKind.of(p) != .html else { return .bytes(bytes, same: same) }
                if same, case .spooled(let d) = textFiles[i] { return .stored(d, same: true) }
                if same, case .file(let source) = textFiles[i] {
                    let c = ContentDigester()
                    bytes.withUnsafeBytes { c.update($0) }
                    var d = c.onDisk(source: source)
                    d.identity = scannedIdentity[i]
                    return .stored(d, same: true)
                }
                if !same, let spool, bytes.count >= AssetTree.largeFile {
                    return .stored(try spool.append(bytes), same: false)
                }
                return .bytes(bytes, same: same)
            }
        } take: { k, result in
            let i = keptIndices[k]
            switch try result.get() {
            case .bytes(let b, let same):
                output[i] = b
                sameBytes[i] = same
            case .stored(let d, let same):
                spooled[i] = d
                sameBytes[i] = same
            }
            content[i] = []
        }
        refs = []
        if options.sri {
            var integrity: [String: String] = [:]
            for i in 0..<count where AssetKind.of(paths[i]) != .html {
                integrity[newName[i]] = (onDisk[i] ?? spooled[i])?.sri ?? sri(output[i])
            }
            let finalScanner = ReferenceScanner(files: Set(newName))
            for i in keptIndices where AssetKind.of(paths[i]) == .html {
                let before = output[i]
                output[i] = addIntegrity(before, path: paths[i], scanner: finalScanner, integrity: integrity)
                if output[i] != before { sameBytes[i] = false }
            }
        }

        for i in keptIndices where !handedOver[i] { done(i) }
        // The output files and their manifest entries (digests of the files held in memory
        // taken here, the others have theirs), on all cores, a batch at a time.
        var files: [AssetFile] = []
        files.reserveCapacity(count + 1)
        var records: [ManifestRecord] = []
        records.reserveCapacity(count)
        try parallelBatches(count: count) {
            [onDisk, spooled, output, newName, isHashed, role, reasons] i -> (AssetFile, ManifestRecord?) in
            let p = paths[i], np = newName[i]
            let f: AssetFile, d: ContentDigests, size: Int
            if let known = onDisk[i] ?? spooled[i] {
                f = AssetFile(path: np, onDisk: known)
                // Strings a `ContentDigester` wrote (the only maker of `OnDisk`): they parse.
                d = ContentDigests(sha256Hex: known.sha256, sri: known.sri)!
                size = known.size
            } else {
                f = AssetFile(path: np, bytes: output[i])
                d = ContentDigests(of: output[i])
                size = output[i].count
            }
            guard p != "version.json" else { return (f, nil) }
            let immutable = isHashed[i] || role[i] == .bundler
            return (
                f,
                ManifestRecord(
                    // Keyed by the unhashed name, so hashing the output again writes the same manifest.
                    key: isHashed[i] ? naming.unhashed(p) : p, immutable: immutable,
                    hash: isHashed[i] ? "stamp" : role[i] == .bundler ? "bundler" : nil, digests: d,
                    kept: immutable ? nil : reasons[p], path: np, size: size)
            )
        } take: { i, made in
            files.append(made.0)
            if let r = made.1 { records.append(r) }
            output[i] = []
        }
        // What the manifest is written from is all that is left of the inputs and outputs.
        output = []
        spooled = [:]
        content = []
        let manifest = try ManifestRecord.write(
            records, name: options.manifestName, length: options.length, spool: options.spool)
        records = []
        files.append(manifest)
        options.ready?(manifest)
        var sources: [String?] = paths.map { $0 }
        sources.append(nil)
        sameBytes.append(false)
        // Sorted by new path (an index sort: the files themselves are large to move).
        let byNewPath = files.indices.sorted { utf8Less(files[$0].path, files[$1].path) }
        var keptByOriginal: [String: String] = [:]
        for (p, why) in detail where !isHashed[table[p]!] { keptByOriginal[p] = why }
        return AssetResult(
            files: byNewPath.map { files[$0] }, sources: byNewPath.map { sources[$0] },
            unchanged: byNewPath.map { k in sameBytes[k] && sources[k] == files[k].path },
            extras: rewriteExtras(
                extras, files: Set(paths), renames: { t in table[t].map { newName[$0] } }, length: options.length,
                originals: originals),
            manifestFile: manifest, kept: keptByOriginal)
    }

    /// Files outside the root (server code that writes HTML) with their root-absolute
    /// references to the hashed tree rewritten: `renames` is `AssetResult.renames`, `length`
    /// the options' hash length.
    public static func rewriteExtras(
        _ extras: [AssetFile], renames: [String: String], length: Int, originals: [String: String] = [:]
    ) -> [AssetFile] {
        guard !extras.isEmpty else { return [] }
        return rewriteExtras(
            extras, files: Set(renames.keys), renames: { renames[$0] }, length: length, originals: originals)
    }

    /// The same, with the renames as a lookup over the tree's `files`.
    static func rewriteExtras(
        _ extras: [AssetFile], files: @autoclosure () -> Set<String>, renames: (String) -> String?, length: Int,
        originals: [String: String]
    ) -> [AssetFile] {
        guard !extras.isEmpty else { return [] }
        let scanner = ReferenceScanner(files: files()), naming = Naming(length: length, originals: originals)
        return extras.map { e in
            AssetFile(
                path: e.path,
                bytes: rewrite(
                    e.bytes, scanner.scan(e.bytes, path: e.path, kind: .javascript, outsideRoot: true), renames, naming)
            )
        }
    }

    /// The renames of `result` whose old names `extras` still use where stamp cannot rewrite
    /// them (a server file read after a local frontend was hashed): non-empty means hash again
    /// with the extras.
    public static func unproven(_ result: AssetResult, extras: [AssetFile]) -> [String] {
        // `renames` is made on each use: once here.
        let renames = result.renames
        let paths = renames.keys.sorted(by: utf8Less)
        let watched = paths.indices.filter { renames[paths[$0]] != paths[$0] }
        guard !watched.isEmpty, !extras.isEmpty else { return [] }
        let renamed = watched.map { paths[$0] }
        let server = Analysis.serverFiles(
            extras, finder: NameFinder(paths: paths, watched: watched), matcher: FragmentMatcher(paths: renamed),
            scanner: ReferenceScanner(files: Set(paths)), paths: paths)
        let out = Set(server.pins.map(\.0))
        return out.sorted(by: utf8Less)
    }

    /// Replaces each resolved reference's base name with its target's new one (or, for
    /// `unhashing` members, with the unhashed one), keeping the rest of the token as written.
    static func rewrite(
        _ bytes: [UInt8], _ refs: [Reference], _ names: (String) -> String?, _ naming: Naming,
        unhashing: Set<String> = []
    ) -> [UInt8] {
        // Nothing to replace (images, fonts, most chunks): the same storage, not a copy.
        if !refs.contains(where: { r in
            r.target.map { t in unhashing.contains(t) || names(t).map { $0 != t } ?? false } ?? false
        }) {
            return bytes
        }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + refs.count * (naming.length + 1))
        var at = 0
        for r in refs {
            guard let t = r.target else { continue }
            let replacement: String
            if unhashing.contains(t) {
                replacement = naming.rebase(r.written, from: t, to: naming.unhashed(t))
            } else if let n = names(t), n != t {
                replacement = naming.rebase(r.written, from: t, to: n)
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

    static func addIntegrity(_ html: [UInt8], path: String, scanner: ReferenceScanner, integrity: [String: String])
        -> [UInt8]
    {
        // For each <script ... src=X> and <link ... href=X> without integrity, insert integrity="..." after the tag name.
        var out: [UInt8] = []
        var i = 0
        let n = html.count
        // The next ">" at or after i, found once per stretch (linear however many "<" there are).
        var gt = -1
        func startsTag(_ at: Int, _ name: String) -> Bool {
            let u = Array(name.utf8)
            guard at + 1 + u.count <= n else { return false }
            for (k, c) in u.enumerated() where html[at + 1 + k] | 0x20 != c { return false }
            return true
        }
        while i < n {
            if html[i] == UInt8(ascii: "<"), startsTag(i, "script") || startsTag(i, "link") {
                if gt < i { gt = html[i...].firstIndex(of: UInt8(ascii: ">")) ?? n }
            }
            if html[i] == UInt8(ascii: "<"), gt >= i, gt < n, startsTag(i, "script") || startsTag(i, "link") {
                let tagEnd = gt
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

    /// Subresource Integrity value (sha384, base64).
    public static func sri(_ bytes: [UInt8]) -> String {
        "sha384-" + Base64.encode(Digester.bytes(bytes, .sha384))
    }

    /// Tarjan's strongly connected components, dependencies before dependents; deterministic
    /// for sorted input.
    static func stronglyConnected(_ nodes: [String], edges: [String: [String]]) -> [[String]] {
        let id = Dictionary(uniqueKeysWithValues: nodes.enumerated().map { ($1, $0) })
        let adjacent: [[Int]] = nodes.map { (edges[$0] ?? []).compactMap { id[$0] } }
        return stronglyConnected(count: nodes.count, adjacent: adjacent).map { g in
            g.map { nodes[$0] }.sorted(by: utf8Less)
        }
    }

    /// The same over nodes `0..<count`. Iterative: a chain of 100,000 imports is as deep as a
    /// stack gets.
    static func stronglyConnected(count n: Int, adjacent: [[Int]]) -> [[Int]] {
        var index = [Int](repeating: -1, count: n), low = [Int](repeating: 0, count: n)
        var onStack = [Bool](repeating: false, count: n)
        var stack: [Int] = [], calls: [(node: Int, next: Int)] = []
        var counter = 0
        var result: [[Int]] = []
        func enter(_ v: Int) {
            index[v] = counter
            low[v] = counter
            counter += 1
            stack.append(v)
            onStack[v] = true
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
                    var group: [Int] = []
                    while let w = stack.popLast() {
                        onStack[w] = false
                        group.append(w)
                        if w == v { break }
                    }
                    result.append(group)
                }
            }
        }
        return result
    }
}

/// `<stem>.<hash>.<ext>` names.
struct Naming: Sendable {
    let length: Int
    /// Names stamp gave in an earlier run → the names they replaced (from its manifest).
    var originals: [String: String] = [:]

    /// The name a file had before stamp hashed it (`a/b/x.1a2b3c4d.js` → `a/b/x.js`).
    func unhashed(_ path: String) -> String { originals[path] ?? path }

    /// The new path of `path` for `hash` (a full hex digest): `.` and its first `length` digits
    /// before the last extension of the unhashed name.
    func name(_ path: String, hash: String) -> String {
        let u = unhashed(path)
        let (dir, base) = split(u)
        guard let dot = base.utf8.lastIndex(of: UInt8(ascii: ".")), dot != base.startIndex else { return path }
        return dir + base[..<dot] + "." + hash.prefix(length) + base[dot...]
    }

    /// A token as written, naming `old`, made to name `new` instead; its folder part and
    /// encoding are kept (only the hash between the stem and the extension changes).
    func rebase(_ written: String, from old: String, to new: String) -> String {
        let (dir, base) = split(written)
        guard let dot = base.utf8.lastIndex(of: UInt8(ascii: ".")), dot != base.startIndex else {
            return dir + split(new).1
        }
        var stem = Substring(base[..<dot])
        let tail = base[dot...]
        if originals[old] != nil { stem = stem.dropLast(length + 1) }
        if new == unhashed(old) { return dir + stem + tail }
        let nb = split(new).1
        guard let nd = nb.utf8.lastIndex(of: UInt8(ascii: ".")), nb.utf8.distance(from: nb.startIndex, to: nd) > length
        else { return written }
        let hash = nb[nb.utf8.index(nd, offsetBy: -length)..<nd]
        return dir + stem + "." + hash + tail
    }

    func split(_ p: String) -> (String, String) {
        guard let slash = p.utf8.lastIndex(of: UInt8(ascii: "/")) else { return ("", p) }
        return (String(p[...slash]), String(p[p.utf8.index(after: slash)...]))
    }
}

/// One file's entry in stamp's manifest, compact (a frontend of 100,000 files has as many): the
/// manifest is written from these straight to bytes, never as a JSON tree.
struct ManifestRecord: Sendable {
    /// The file's unhashed path: the key of its entry.
    var key: String
    var immutable: Bool
    /// `stamp` or `bundler`: who named it after its content.
    var hash: String?
    /// Its SHA-256 and SRI, inline (two strings each would cost more than the record).
    var digests: ContentDigests
    /// Why it keeps its name (files that are not immutable).
    var kept: String?
    var path: String
    var size: Int

    /// The manifest of `records` (`algorithm`, `files` by key, `generator`, `length`), written in
    /// pieces of 64 KiB to the spool when there is one, else kept in memory: the same bytes as
    /// `JSONValue.encodePretty` gives for it (members sorted by UTF-8 bytes, the last of a key
    /// given twice kept).
    static func write(_ records: [ManifestRecord], name: String, length: Int, spool: AssetSpool?) throws
        -> AssetFile
    {
        // Sorted by key, the later of two equal keys first, so the first of each key is kept.
        let order = records.indices.sorted { a, b in
            let x = records[a].key, y = records[b].key
            return utf8Less(x, y) || (x == y && a > b)
        }
        func produce(_ emit: ([UInt8]) throws -> Void) rethrows {
            var out: [UInt8] = []
            out.reserveCapacity(72 << 10)
            func line(_ text: String) { out.append(contentsOf: text.utf8) }
            func member(_ indent: String, _ key: String, _ value: String, last: Bool = false) {
                line(indent)
                JSONValue.writeString(key, into: &out)
                line(": ")
                JSONValue.writeString(value, into: &out)
                line(last ? "\n" : ",\n")
            }
            line("{\n  \"algorithm\": \"sha256\",\n  \"files\": {")
            var previous: String?
            var first = true
            for i in order {
                let r = records[i]
                if let previous, previous == r.key { continue }
                previous = r.key
                line(first ? "\n    " : ",\n    ")
                first = false
                JSONValue.writeString(r.key, into: &out)
                line(": {\n")
                member("      ", "cache", r.immutable ? "immutable" : "revalidate")
                if let h = r.hash { member("      ", "hash", h) }
                member("      ", "integrity", r.digests.sri)
                if let k = r.kept { member("      ", "kept", k) }
                member("      ", "path", r.path)
                member("      ", "sha256", r.digests.sha256Hex)
                line("      \"size\": \(r.size)\n    }")
                if out.count >= 64 << 10 {
                    try emit(out)
                    out.removeAll(keepingCapacity: true)
                }
            }
            line(first ? "}" : "\n  }")
            line(",\n  \"generator\": \"stamp\",\n  \"length\": \(length)\n}\n")
            try emit(out)
        }
        if let spool {
            let d = try spool.append { emit in try produce { piece in try piece.withUnsafeBytes { try emit($0) } } }
            return AssetFile(path: name, spooledText: d)
        }
        var all: [UInt8] = []
        produce { all += $0 }
        return AssetFile(path: name, bytes: all)
    }
}
