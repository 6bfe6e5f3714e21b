import Assets
import Dispatch
import Hashing
import IO
import Layers
import OCI
import Synchronization

/// The file tree the lower layers make together (OCI image-layer spec "Applying changesets"):
/// later layers replace earlier entries, `.wh.NAME` removes NAME, `.wh..wh..opq` hides what
/// lower layers put in its folder. Only names and types are kept, never file contents.
///
/// Built by one thread (a worker of the scan), then handed to the caller and used by one
/// thread at a time: the unchecked conformance is safe.
public final class MergedView: @unchecked Sendable {
    public struct Entry: Sendable {
        public var type: TarIndex.EntryType
        public var mode: UInt32
        public var size: Int64
        /// Index of the layer the entry comes from.
        public var layer: Int
        /// Numeric owner, as the tar header gives it.
        public var uid: Int = 0
        public var gid: Int = 0
        /// A folder's extended attributes (kept for folders only: the stamp layer repeats them).
        public var xattrs: [Xattr] = []
    }

    public private(set) var entries: [String: Entry] = [:]
    /// The paths directly inside each folder ("" for the root): a whiteout removes a subtree in
    /// time proportional to it, not to the whole tree.
    private var children: [String: Set<String>] = [:]

    /// The longest entry name taken (Linux's PATH_MAX): a longer one cannot be opened by a
    /// runtime, and a 100,000-deep name would make as many folders here.
    public static let maxPathBytes = 4096
    /// Contents of the regular files `capture` asked for, as the merged tree has them.
    public private(set) var contents: [String: [UInt8]] = [:]
    /// For captured files `digestOnly` names: SHA-256, SRI and size instead of the bytes.
    public private(set) var digests: [String: AssetFile.OnDisk] = [:]
    /// Two paths that Swift's (canonical) String equality takes for one: NFC and NFD spellings.
    private(set) var unicodeClash: (String, String)?
    /// Bytes of the paths kept (entries and the folders they imply): bounded, since thousands of
    /// distinct deep chains would each make their folders.
    private(set) var pathBytes = 0
    public static let maxPathBytesKept = 64 << 20

    /// Layers `build` took from the scan cache, and layers it read.
    public private(set) var layersFromCache = 0
    public private(set) var layersRead = 0

    public init() {}

    /// Reads every layer (decompressing it once, layers in parallel on all cores) and applies
    /// them bottom-up. Entries are kept for symlinks and for paths `keep` wants (so a big
    /// node_modules costs no memory); the bytes of regular files `capture` wants are kept too.
    /// With a `cache`, a layer read before with the same `filter` (a text that names what
    /// `keep` and `capture` select) is taken from it instead. With `slots` a destination reserved,
    /// each layer read here is written into its place on the way (hashed once, read once). The caller
    /// finishes `progress`.
    public static func build(
        layers: [Descriptor], store: BlobStore, keep: @escaping @Sendable (String) -> Bool = { _ in true },
        capture: @escaping @Sendable (String) -> Bool = { _ in false },
        digestOnly: @escaping @Sendable (String) -> Bool = { _ in false },
        progress: ProgressLine = .off, cache: ScanCache? = nil, filter: String = "",
        slots: BlobSlots? = nil, budget: CaptureBudget = CaptureBudget(),
        spool: Bool = false
    ) throws -> MergedView {
        let results = parallelMap(count: layers.count) { i -> Result<LayerChanges, Error> in
            // Keyed by the media type too: a blob read (and its compression checked) under one
            // type says nothing of another manifest's claim for it.
            let key = filter + "\nmedia " + layers[i].mediaType
            if let hit = cache?.load(layers[i].digest, filter: key, layer: i) {
                progress.add(Int(layers[i].size))
                return .success(hit)
            }
            return Result {
                let c = try readLayer(
                    layers[i], index: i, store: store, keep: keep, capture: capture, digestOnly: digestOnly,
                    progress: progress, slots: slots, budget: budget, spool: spool)
                cache?.store(c, layers[i].digest, filter: key)
                return c
            }
        }
        let view = assemble(try results.map { try $0.get() })
        if view.pathBytes > maxPathBytesKept {
            throw StampError.badInput(
                "the base's paths that stamp must keep (its frontend, its folders of executables) come to more than "
                    + "\(maxPathBytesKept >> 20) MiB: thousands of deep distinct folders, not a real tree"
            )
        }
        if let (a, b) = view.unicodeClash {
            throw StampError.badInput(
                "the base has \(String(reflecting: a)) and \(String(reflecting: b)), two paths that differ only in "
                    + "Unicode normalisation (NFC/NFD); stamp cannot keep them apart"
            )
        }
        view.layersFromCache = results.filter { (try? $0.get())?.fromCache == true }.count
        view.layersRead = layers.count - view.layersFromCache
        return view
    }

    /// The tree that layers' changes make, bottom layer first.
    static func assemble(_ changes: [LayerChanges]) -> MergedView {
        let view = MergedView()
        for c in changes { view.apply(c) }
        return view
    }

    /// Lets go of what a layer above hides from each layer below it: an entry whited out (or
    /// under a folder whited out), under a folder made opaque, or a non-folder that an entry of
    /// the same path replaces. Applying `changes` bottom-up then makes the same tree, without
    /// holding a lower layer's frontend that a stamp layer hides or renames (100,000 files).
    /// Only layers `mutable` says are this tree's alone are changed; a folder below is never
    /// dropped for being replaced (its children would then stay).
    static func dropShadowed(_ changes: inout [LayerChanges], mutable: [Bool]) {
        var whiteouts = Set<String>(), opaque = Set<String>(), above = Set<String>()
        for i in changes.indices.reversed() {
            if mutable[i], !(whiteouts.isEmpty && opaque.isEmpty && above.isEmpty) {
                func hidden(_ p: String, _ e: Entry) -> Bool {
                    if e.type != .directory && above.contains(p) { return true }
                    var q = p
                    while true {
                        if whiteouts.contains(q) { return true }
                        guard q.utf8.contains(0x2F) else { return opaque.contains("") }
                        q = Path.dirname(q)
                        if opaque.contains(q) { return true }
                    }
                }
                var gone: [String] = []
                changes[i].items.removeAll { p, e in
                    guard hidden(p, e) else { return false }
                    gone.append(p)
                    return true
                }
                for p in gone {
                    changes[i].captured[p] = nil
                    changes[i].digests[p] = nil
                }
            }
            whiteouts.formUnion(changes[i].whiteouts)
            opaque.formUnion(changes[i].opaque)
            for (p, _) in changes[i].items { above.insert(p) }
        }
    }

    struct LayerChanges {
        var items: [(String, Entry)] = []
        var whiteouts: [String] = []
        var opaque: [String] = []
        var captured: [String: [UInt8]] = [:]
        var digests: [String: AssetFile.OnDisk] = [:]
        /// Taken from the scan cache rather than read.
        var fromCache = false
    }

    private static func readLayer(
        _ l: Descriptor, index i: Int, store: BlobStore, keep: (String) -> Bool,
        capture: (String) -> Bool, digestOnly: (String) -> Bool, progress: ProgressLine,
        slots: BlobSlots? = nil, budget: CaptureBudget, spool: Bool
    ) throws -> LayerChanges {
        let loc = try store.require(l)
        guard loc.length == l.size else {
            throw StampError.sizeMismatch(what: "blob \(l.digest)", expected: l.size, found: loc.length)
        }
        let claimed = slots?.claim(l.digest)
        do {
            let changes = try readLayer(
                l, at: loc, index: i, keep: keep, capture: capture, digestOnly: digestOnly, progress: progress,
                tee: claimed, budget: budget, spool: spool)
            claimed?.finish(nil)
            return changes
        } catch {
            claimed?.finish(error)
            throw error
        }
    }

    private static func readLayer(
        _ l: Descriptor, at loc: BlobLocation, index i: Int, keep: (String) -> Bool, capture: (String) -> Bool,
        digestOnly: (String) -> Bool, progress: ProgressLine, tee: ByteSink?, budget: CaptureBudget,
        spool: Bool
    ) throws -> LayerChanges {
        // The blob is hashed as it is read: a corrupt layer is reported as a digest mismatch,
        // not as whatever the decompressor makes of it. `tee` gets its bytes as they pass.
        var blob: ByteSource = try loc.open()
        if let tee { blob = ObservedSource(blob, tee: tee) }
        let source = HashingSource(ObservedSource(blob, progress))
        var changes = LayerChanges()
        var failure: Error?
        var reader: LayerReader?
        do {
            // A large layer is inflated on a second thread while this one parses the tar.
            reader = try LayerReader(
                source: source, mode: .tar, label: "layer \(l.digest)", pipelined: l.size > pipelineThreshold)
            try readEntries(
                reader!, l, i, keep, capture, digestOnly, &changes, budget: budget,
                spool: spool ? { try AssetSpool() } : nil)
            // What `stamp verify` reports of an image, a build refuses in its base.
            if let declared = MediaType.layerCompression(l.mediaType), let found = reader!.detectedCompression,
                found != declared
            {
                throw StampError.badInput(
                    "layer \(l.digest): media type \(l.mediaType) says \(declared.rawValue), content is "
                        + "\(found.rawValue)"
                )
            }
        } catch { failure = error }
        reader?.drain()
        let found = try source.finish()
        if found != l.digest {
            throw StampError.digestMismatch(what: "blob \(l.digest)", expected: l.digest, found: found)
        }
        if let failure { throw failure }
        return changes
    }

    /// Layers above this many compressed bytes are inflated on a thread of their own.
    static let pipelineThreshold: Int64 = 8 << 20

    static func readEntries(
        _ reader: LayerReader, _ l: Descriptor, _ i: Int, _ keep: (String) -> Bool,
        _ capture: (String) -> Bool, _ digestOnly: (String) -> Bool, _ changes: inout LayerChanges,
        budget: CaptureBudget = CaptureBudget(), spool makeSpool: (() throws -> AssetSpool)? = nil
    ) throws {
        // `digestOnly` files go to a spool of this layer's when there is one (their bytes are
        // needed later, not in memory), else only their digests are kept.
        var spool: AssetSpool?
        while let e = try reader.next() {
            guard !e.path.utf8.contains(0) else {
                throw StampError.badInput(
                    "layer \(l.digest): an entry name holds a NUL byte: \(String(reflecting: e.path))")
            }
            guard e.path.utf8.count <= maxPathBytes else {
                throw StampError.badInput(
                    "layer \(l.digest): an entry name of \(e.path.utf8.count) bytes (longer than \(maxPathBytes)): "
                        + "\(e.path.prefix(60))…"
                )
            }
            guard Path.isSafeEntryName(e.path), let p = Path.clean(e.path), !p.isEmpty else {
                if Path.clean(e.path) == "" { continue }
                throw StampError.badInput("layer \(l.digest): entry \"\(e.path)\" escapes the root")
            }
            let name = Path.basename(p)
            let dir = p.utf8.contains(0x2F) ? Path.dirname(p) : ""
            if name == ".wh..wh..opq" {
                changes.opaque.append(dir)
                continue
            }
            if name.hasPrefix(".wh.") {
                changes.whiteouts.append(dir.isEmpty ? String(name.dropFirst(4)) : dir + "/" + name.dropFirst(4))
                continue
            }
            var isLink = false
            if case .symlink = e.type { isLink = true }
            guard isLink || keep(p) else { continue }
            // A path the layer names again: its last entry is what a runtime unpacks, so what an
            // earlier one captured (held, or spooled as a digest) goes.
            changes.captured[p] = nil
            changes.digests[p] = nil
            // A hard link is the file it links to (earlier in the same layer): a frontend file
            // stored as one is read as that file's bytes, not dropped.
            if case .hardlink(let t) = e.type, capture(p), let target = Path.clean(t),
                let b = changes.captured[target] ?? changes.digests[target].map({ _ in [UInt8]() })
            {
                let size = changes.digests[target].map { Int64($0.size) } ?? Int64(b.count)
                changes.items.append(
                    (p, Entry(type: .file, mode: e.mode, size: size, layer: i, uid: e.uid, gid: e.gid)))
                if let d = changes.digests[target] { changes.digests[p] = d } else { changes.captured[p] = b }
                continue
            }
            changes.items.append(
                (
                    p,
                    Entry(
                        type: e.type, mode: e.mode, size: max(0, e.size), layer: i, uid: e.uid, gid: e.gid,
                        xattrs: e.type == .directory ? e.xattrs : [])
                ))
            if e.type == .file, capture(p) {
                if digestOnly(p), let makeSpool, e.size >= AssetTree.largeFile {
                    // Small ones stay in memory (and in the scan cache) like text files.
                    try budget.take(max(0, e.size), what: "layer \(l.digest): /\(p)")
                    if spool == nil { spool = try makeSpool() }
                    changes.digests[p] = try spool!.append { emit in
                        try withoutActuallyEscaping(emit) { try reader.readData(into: EmitSink($0)) }
                    }
                } else if digestOnly(p), makeSpool == nil, AssetKind.of(p) == .binary {
                    // Without a spool only a binary may be kept as its digests: text is rewritten.
                    let sink = ContentDigestSink()
                    try reader.readData(into: sink)
                    changes.digests[p] = sink.digester.onDisk(source: "/" + p)
                } else {
                    // Counted before it is read: a decompression bomb fails here, not in malloc.
                    try budget.take(max(0, e.size), what: "layer \(l.digest): /\(p)")
                    changes.captured[p] = try reader.readData(limit: 256 << 20)
                }
            }
        }
    }

    func apply(_ c: LayerChanges) {
        for d in c.opaque { removeChildren(of: d) }
        for w in c.whiteouts { remove(w) }
        for (p, e) in c.items {
            if let old = entries[p], old.type == .directory, e.type != .directory { removeChildren(of: p) }
            if let i = entries.index(forKey: p) {
                let kept = entries[i].key
                if unicodeClash == nil, !kept.utf8.elementsEqual(p.utf8) { unicodeClash = (kept, p) }
            } else {
                children[Self.parent(p), default: []].insert(p)
                pathBytes += p.utf8.count
            }
            entries[p] = e
            contents[p] = c.captured[p]
            digests[p] = c.digests[p]
            var parent = p
            while parent.utf8.contains(0x2F) {
                parent = Path.dirname(parent)
                if entries[parent] != nil { break }
                // What overlay runtimes make of a folder no entry names: root's, 0755.
                entries[parent] = Entry(type: .directory, mode: 0o755, size: 0, layer: e.layer)
                children[Self.parent(parent), default: []].insert(parent)
                pathBytes += parent.utf8.count
            }
            // `build` reports it; nothing more is worth keeping.
            if pathBytes > Self.maxPathBytesKept { return }
        }
    }

    static func parent(_ p: String) -> String { p.utf8.contains(0x2F) ? Path.dirname(p) : "" }

    /// Removes `p` and everything under it.
    private func remove(_ p: String) {
        guard entries.removeValue(forKey: p) != nil else { return }
        contents[p] = nil
        digests[p] = nil
        children[Self.parent(p)]?.remove(p)
        removeChildren(of: p)
    }

    private func removeChildren(of dir: String) {
        guard let kids = children.removeValue(forKey: dir) else { return }
        for k in kids {
            entries[k] = nil
            contents[k] = nil
            digests[k] = nil
            removeChildren(of: k)
        }
    }

    /// A regular file taken out of the view by `takeFiles(under:)`: its path below the folder,
    /// its owner and mode, and its bytes (or where the scan spooled them).
    public struct TakenFile: Sendable {
        public var path: String
        public var mode: UInt32
        public var uid: Int
        public var gid: Int
        /// Its bytes, or where the scan spooled them (boxed: most files are held in memory,
        /// and 100,000 of these should not each carry a range inline); nil once handed on.
        public var content: Content?
        public enum Content: Sendable {
            case bytes([UInt8])
            indirect case spooled(AssetFile.OnDisk)
        }
        /// The file as the hasher and the asset checks take it: its bytes, or its range of the
        /// scan's spool (a binary's bytes stay there; text is read from there when needed).
        public var assetFile: AssetFile? {
            switch content {
            case .bytes(let b): return AssetFile(path: path, bytes: b)
            case .spooled(let d):
                return AssetKind.of(path) == .binary
                    ? AssetFile(path: path, onDisk: d) : AssetFile(path: path, spooledText: d)
            case nil: return nil
            }
        }
    }

    /// Removes the regular files below `folder` (not the folders, which the stamp layer's parents
    /// need) and returns them sorted by path: their bytes are then the caller's alone, and the
    /// view's tables are rebuilt to their new size (a frontend of 100,000 files is let go
    /// whole, not kept beside its hash).
    public func takeFiles(under folder: String) -> [TakenFile] {
        let prefix = folder + "/"
        var taken: [TakenFile] = []
        for (p, e) in entries where p.hasPrefix(prefix) && e.type == .file {
            taken.append(
                TakenFile(
                    path: String(p.dropFirst(prefix.count)), mode: e.mode, uid: e.uid, gid: e.gid,
                    content: contents[p].map { .bytes($0) } ?? digests[p].map { .spooled($0) }))
        }
        guard !taken.isEmpty else { return [] }
        func isTaken(_ p: String) -> Bool { p.hasPrefix(prefix) && entries[p]?.type == .file }
        children = children.mapValues { kids in kids.filter { !isTaken($0) } }
        contents = contents.filter { !isTaken($0.key) }
        digests = digests.filter { !isTaken($0.key) }
        entries = entries.filter { !($0.key.hasPrefix(prefix) && $0.value.type == .file) }
        taken.sort { utf8Less($0.path, $1.path) }
        return taken
    }

    /// The entry a path names, following symlinks (also in its folders) inside the tree.
    public func lookup(_ path: String) -> (path: String, entry: Entry)? {
        var queue = path.split(separator: "/").map(String.init)
        var resolved: [String] = []
        var hops = 0
        while !queue.isEmpty {
            let c = queue.removeFirst()
            if c == "." || c.isEmpty { continue }
            if c == ".." {
                if !resolved.isEmpty { resolved.removeLast() }
                continue
            }
            let candidate = (resolved + [c]).joined(separator: "/")
            guard let e = entries[candidate] else { return nil }
            if case .symlink(let target) = e.type {
                hops += 1
                if hops > 40 { return nil }
                if target.hasPrefix("/") { resolved = [] }
                queue = target.split(separator: "/").map(String.init) + queue
                continue
            }
            resolved.append(c)
        }
        let p = resolved.joined(separator: "/")
        guard let e = entries[p] else { return nil }
        return (p, e)
    }

    /// Whether `path` is (or links to) a regular file.
    public func isFile(_ path: String) -> Bool {
        guard let (_, e) = lookup(path) else { return false }
        switch e.type {
        case .file, .hardlink: return true
        default: return false
        }
    }

    /// The first of `names` found as a file in one of `searchPath`'s folders, as `folder/name`.
    public func which(_ names: [String], searchPath: [String]) -> String? {
        for n in names {
            for d in searchPath where !d.isEmpty {
                let p = (d.hasSuffix("/") ? d : d + "/") + n
                if isFile(p) { return p }
            }
        }
        return nil
    }
}

/// How many bytes a build (or a verify) may keep of the files it captures, across all layers
/// and threads: a frontend that inflates past it is refused with the flag that raises it.
public final class CaptureBudget: Sendable {
    public let limit: Int64
    private let used = Mutex<Int64>(0)
    public init(limit: Int64 = AssetPlan.defaultMaxBytes) { self.limit = limit }

    func take(_ n: Int64, what: String) throws {
        let over: Bool = used.withLock { used in
            used += n
            return used > limit
        }
        if over {
            throw StampError.badInput(
                "\(what): the frontend inflates to more than \(limit >> 20) MiB (a decompression bomb?); "
                    + "--max-frontend-size raises the limit"
            )
        }
    }
}

/// Hands what passes to a closure (a spool's append).
final class EmitSink: ByteSink {
    let emit: (UnsafeRawBufferPointer) throws -> Void
    init(_ emit: @escaping (UnsafeRawBufferPointer) throws -> Void) { self.emit = emit }
    func write(_ buffer: UnsafeRawBufferPointer) throws { try emit(buffer) }
}

/// Feeds a `ContentDigester` with what passes (a file whose bytes are not kept).
final class ContentDigestSink: ByteSink {
    let digester = ContentDigester()
    func write(_ buffer: UnsafeRawBufferPointer) throws { digester.update(buffer) }
}
