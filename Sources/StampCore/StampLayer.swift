import Assets
import Foundation
import Hashing
import IO
import Layers
import OCI
import Templates

/// One entry of the stamp layer.
public struct LayerEntry: Sendable {
    /// `part`: bytes of a file that stamp read or wrote earlier, known by their digest (a
    /// frontend image left on disk, a rewritten script in the asset spool).
    public enum Content: Sendable {
        case bytes([UInt8]), file(String), directory, symlink(String)
        /// Boxed: an inline range would make every entry of a 180,000-entry layer as large as it.
        indirect case part(AssetFile.OnDisk)
    }
    /// Path inside the image without the leading `/`.
    public var path: String
    public var content: Content
    public var mode: UInt32
    /// Numeric owner; stamp's own files are root's, a replaced or parent entry keeps the base's.
    public var uid: Int = 0
    public var gid: Int = 0
    /// A parent folder repeats the base's extended attributes.
    public var xattrs: [Xattr] = []
}

/// A layer written to a temporary file, with both of its digests. Handed from the thread that
/// built it to the one that writes the image once the file is finished, and never written
/// again: the unchecked conformance (for `file`) is safe.
public final class BuiltLayer: @unchecked Sendable {
    public let file: WritableFile
    public let descriptor: Descriptor
    public let diffID: String
    public let paths: [String]

    init(file: WritableFile, descriptor: Descriptor, diffID: String, paths: [String]) {
        self.file = file
        self.descriptor = descriptor
        self.diffID = diffID
        self.paths = paths
    }
}

public enum StampLayer {
    /// The files of the stamp: version.txt, version.json, and every `--add`.
    public static func entries(plan: StampPlan, versionJSON: [UInt8], extra: consuming [LayerEntry] = []) throws
        -> [LayerEntry]
    {
        var entries: [LayerEntry] = consume extra
        if let p = plan.versionFile {
            entries.append(
                LayerEntry(path: Path.clean(p)!, content: .bytes(Array((plan.version + "\n").utf8)), mode: 0o644))
        }
        if let p = plan.versionJSON {
            entries.append(LayerEntry(path: Path.clean(p)!, content: .bytes(versionJSON), mode: 0o644))
        }
        if let p = plan.publicVersionJSON {
            entries.append(LayerEntry(path: Path.clean(p)!, content: .bytes(versionJSON), mode: 0o644))
        }
        if let h = plan.health {
            entries.append(
                LayerEntry(
                    path: Path.clean(h.scriptPath)!,
                    content: .bytes(Array(h.script(versionJSON: plan.versionJSON!).render().utf8)), mode: 0o755))
        }
        for a in plan.adds { entries += try walk(a) }
        entries.sort { utf8Less($0.path, $1.path) }
        for (a, b) in zip(entries, entries.dropFirst()) where a.path == b.path {
            throw StampError.usage("two files would land at /\(a.path) in the stamp layer")
        }
        return entries
    }

    /// `version.json`: what the image is, for people, probes and dashboards.
    public static func versionJSON(plan: StampPlan, baseName: String?, baseDigest: String, assets: JSONValue? = nil)
        -> [UInt8]
    {
        var base: JSONValue = .object(baseDigest.isEmpty ? [] : [("digest", .string(baseDigest))])
        if let baseName { base["name"] = .string(baseName) }
        var stamp: JSONValue = .object([("tool", .string("stamp \(StampVersion.current)"))])
        if let f = plan.versionFile { stamp["versionFile"] = .string(f) }
        if let h = plan.health { stamp["healthScript"] = .string(h.scriptPath) }
        if let p = plan.publicVersionJSON { stamp["publicVersionJson"] = .string(p) }
        var doc: JSONValue = .object([
            ("version", .string(plan.version)),
            ("created", .string(plan.created.rfc3339)),
            ("base", base),
            ("stamp", stamp),
        ])
        if let r = plan.revision { doc["revision"] = .string(r) }
        if let s = plan.source { doc["source"] = .string(s) }
        if let assets { doc["assets"] = assets }
        return JSONValue.encodePretty(doc)
    }

    private static func walk(_ a: StampPlan.AddSpec) throws -> [LayerEntry] {
        var dest = a.destination
        var st = stat()
        guard lstat(a.source, &st) == 0 else {
            throw StampError.usage("--add: \(a.source): \(String(cString: strerror(errno)))")
        }
        let isDir = (st.st_mode & S_IFMT) == S_IFDIR
        if dest.hasSuffix("/") && !isDir { dest += Path.basename(a.source) }
        guard let root = Path.clean(dest), !root.isEmpty else {
            throw StampError.usage("--add: cannot add to the image root itself")
        }
        var out: [LayerEntry] = []
        func visit(_ src: String, _ rel: String) throws {
            var st = stat()
            guard lstat(src, &st) == 0 else {
                throw StampError.usage("--add: \(src): \(String(cString: strerror(errno)))")
            }
            let mode = st.st_mode & S_IFMT
            if mode == S_IFDIR {
                out.append(LayerEntry(path: rel, content: .directory, mode: 0o755))
                let names = try FileManager.default.contentsOfDirectory(atPath: src).sorted()
                for n in names { try visit(src + "/" + n, rel + "/" + n) }
            } else if mode == S_IFREG {
                let exec = st.st_mode & 0o111 != 0
                out.append(LayerEntry(path: rel, content: .file(src), mode: exec ? 0o755 : 0o644))
            } else if mode == S_IFLNK {
                var buf = [CChar](repeating: 0, count: 4097)
                let n = readlink(src, &buf, 4096)
                guard n >= 0 else { throw StampError.usage("--add: \(src): cannot read link") }
                let target = String(decoding: buf.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
                out.append(LayerEntry(path: rel, content: .symlink(target), mode: 0o777))
            } else {
                throw StampError.usage("--add: \(src): only files, folders and symlinks can be added")
            }
        }
        try visit(a.source, root)
        return out
    }

    /// `entries` with an entry for each parent folder that has none, carrying the owner and mode
    /// the base's merged layers give that folder (0755 root for a folder the base lacks, or one
    /// below a folder this layer makes opaque). Overlay runtimes (containers-storage, docker's
    /// overlay2) create a parent missing from a layer as root 0755, and the top layer's folder
    /// wins: without these entries the base's `/app` would turn root-owned. A folder `--add`
    /// brings that the base has keeps the base's owner and mode too. A parent that the base has
    /// as a symlink or a file is refused: writing through it would replace it.
    public static func withParents(_ entries: consuming [LayerEntry], view: MergedView) throws -> [LayerEntry] {
        var out = entries
        guard !out.isEmpty else { return out }
        // Sorted by path, the entries given are found by binary search; the folders added here
        // are few (a 180,000-entry frontend layer needs no table of its paths).
        out.sort { utf8Less($0.path, $1.path) }
        let given = out.count
        func find(_ p: String) -> Int? { indexSorted(out, count: given, of: p, key: \.path) }
        var added: [String: Int] = [:]
        let opaque = out.filter { Path.basename($0.path) == ".wh..wh..opq" }.map { Path.dirname($0.path) }
        func hidden(_ p: String) -> Bool { opaque.contains { p.hasPrefix($0 + "/") } }
        func base(_ p: String) throws -> MergedView.Entry? {
            guard !hidden(p), let b = view.entries[p] else { return nil }
            switch b.type {
            case .directory: return b
            case .symlink(let t):
                throw StampError.badInput(
                    "/\(p) is a symlink in the base (to \(t)): stamp would replace it with a folder; give the path it "
                        + "points to"
                )
            default:
                throw StampError.badInput("/\(p) is a file in the base, not a folder: stamp cannot put files under it")
            }
        }
        for k in 0..<given {
            // A folder the layer itself brings (`--add`) keeps the base's owner and mode.
            if case .directory = out[k].content, let b = try base(out[k].path) {
                out[k].mode = b.mode
                out[k].uid = b.uid
                out[k].gid = b.gid
                out[k].xattrs = b.xattrs
            }
            var p = out[k].path
            while p.utf8.contains(0x2F) {
                p = Path.dirname(p)
                if added[p] != nil || find(p) != nil { break }
                let b = try base(p)
                added[p] = out.count
                out.append(
                    LayerEntry(
                        path: p, content: .directory, mode: b?.mode ?? 0o755, uid: b?.uid ?? 0, gid: b?.gid ?? 0,
                        xattrs: b?.xattrs ?? []))
            }
        }
        out.sort { utf8Less($0.path, $1.path) }
        return out
    }

    /// Every folder above `paths` (`app`, `app/server` for `app/server/x`): what the scan of the
    /// base must keep for `withParents`.
    public static func ancestors(of paths: [String]) -> Set<String> {
        var out = Set<String>()
        for path in paths {
            guard var p = Path.clean(path) else { continue }
            while p.utf8.contains(0x2F) {
                p = Path.dirname(p)
                guard out.insert(p).inserted else { break }
            }
        }
        return out
    }

    /// Identifies a list of entries by what they would write, so platforms with the same stamp
    /// share one layer.
    static func fingerprint(_ entries: [LayerEntry]) -> String {
        let d = Digester(.sha256)
        for e in entries {
            d.update(Array("\(e.path)\0\(e.mode)\0\(e.uid):\(e.gid)\0".utf8))
            for x in e.xattrs {
                d.update(Array("x\(x.name)\0\(x.value.count)\0".utf8))
                d.update(x.value)
            }
            switch e.content {
            case .bytes(let b):
                d.update(Array("b\(b.count)\0".utf8))
                d.update(b)
            case .file(let p): d.update(Array("f\(p)\0".utf8))
            case .part(let o): d.update(Array("p\(o.sha256)\0\(o.size)\0".utf8))
            case .directory: d.update(Array("d\0".utf8))
            case .symlink(let t): d.update(Array("l\(t)\0".utf8))
            }
        }
        return d.finalizeHex()
    }

    /// Writes the entries as a tar (fixed headers, mtime = created), compressed, to a temporary
    /// file beside `near`. Both digests are computed while the bytes pass.
    public static func write(
        _ entries: [LayerEntry], created: Timestamp, compression: Compression, level: Int?,
        beside near: String
    ) throws -> BuiltLayer {
        let file = try WritableFile.temporary(beside: near)
        let compressed = DigestingSink(file)
        let compressor = try CompressingSink(compression, level: level, next: compressed)
        let uncompressed = DigestingSink(compressor)
        let tar = TarWriter(sink: uncompressed, mtime: created.epoch)
        for e in entries {
            switch e.content {
            case .bytes(let b):
                try tar.addFile(e.path, b, mode: e.mode, uid: e.uid, gid: e.gid)
            case .directory:
                try tar.begin(
                    .init(path: e.path, kind: .directory, mode: e.mode, uid: e.uid, gid: e.gid, xattrs: e.xattrs))
            case .symlink(let t):
                try tar.begin(.init(path: e.path, kind: .symlink(t), mode: 0o777, uid: e.uid, gid: e.gid))
            case .file(let src):
                let f = try ReadableFile(src)
                try tar.begin(.init(path: e.path, kind: .file, mode: e.mode, size: f.size, uid: e.uid, gid: e.gid))
                _ = try copyStream(from: f.section(offset: 0, length: f.size), to: TarDataSink(tar))
            case .part(let o):
                try tar.begin(
                    .init(path: e.path, kind: .file, mode: e.mode, size: Int64(o.size), uid: e.uid, gid: e.gid))
                try copyPart(o, to: TarDataSink(tar))
            }
        }
        try tar.finish()
        try compressor.finish()
        try file.finish()
        let d = Descriptor(
            mediaType: MediaType.ociLayerType(compression), digest: compressed.digester.finalizeDigest(),
            size: compressed.count)
        // What the layer brings (its folders are there for their owners and modes).
        var paths: [String] = []
        for e in entries {
            if case .directory = e.content { continue }
            paths.append(e.path)
        }
        return BuiltLayer(file: file, descriptor: d, diffID: uncompressed.digester.finalizeDigest(), paths: paths)
    }
}

/// Copies a `part`, checking that the bytes are still those its digest names (a frontend file
/// edited while stamp runs fails the build rather than shipping bytes the manifest does not name).
func copyPart(_ o: AssetFile.OnDisk, to sink: ByteSink) throws {
    let loc = BlobLocation.file(try ReadableFile(o.source), offset: o.offset, length: Int64(o.size))
    do {
        // Bytes in stamp's own (unlinked) spool cannot change; a file from the folder is checked.
        try ImageWriter.copyChecked(
            digest: "sha256:" + o.sha256, size: Int64(o.size), from: loc, to: sink, hash: o.spool == nil)
    } catch StampError.digestMismatch, StampError.sizeMismatch {
        throw StampError.badInput("\(o.source): changed while stamp was reading it")
    }
}

final class TarDataSink: ByteSink {
    let tar: TarWriter
    init(_ tar: TarWriter) { self.tar = tar }
    func write(_ buffer: UnsafeRawBufferPointer) throws { try tar.writeData(buffer) }
}

public enum StampVersion {
    public static let current = "0.1.0"
}
