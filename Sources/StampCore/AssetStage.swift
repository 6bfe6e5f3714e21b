import Assets
import Hashing
import IO
import Layers
import OCI

/// Fingerprints the frontend of one platform image: reads it from the merged lower layers (or a
/// local folder), hashes it, and returns the stamp-layer entries: renamed and rewritten files,
/// whiteouts for the names they replace, the manifest, rewritten server files.
public enum AssetStage {
    public struct Output: Sendable {
        public var entries: [LayerEntry]
        /// For version.json's `assets`.
        public var info: JSONValue
        public var renamed: Int
    }

    /// stamp's own manifest, at the root of the frontend (a name no bundler or server uses).
    static let manifestName = AssetOptions.defaultManifest

    static func options(_ a: AssetPlan) -> AssetOptions {
        var o = AssetOptions()
        o.keep = a.keep.map(Glob.init)
        o.sri = a.sri
        o.manifestName = manifestName
        return o
    }

    /// What the merged view must keep the bytes of.
    static func capture(_ plan: AssetPlan?) -> @Sendable (String) -> Bool {
        guard let a = plan else { return { _ in false } }
        let root = Path.clean(a.root)! + "/"
        let extra = Set(a.rewrite.compactMap { Path.clean($0) })
        return { p in (a.localFolder == nil && p.hasPrefix(root)) || extra.contains(p) }
    }

    /// A text naming what `capture(plan)` selects.
    static func captureKey(_ plan: AssetPlan?) -> String {
        guard let a = plan else { return "" }
        let parts =
            (a.localFolder == nil ? [Path.clean(a.root)! + "/"] : []) + a.rewrite.compactMap { Path.clean($0) }.sorted()
        return parts.joined(separator: ":")
    }

    /// Names under the root the hash leaves out: the manifest, and the public version.json.
    static func skipped(_ a: AssetPlan, publicVersion: String?) -> Set<String> {
        let root = Path.clean(a.root)!
        return [
            manifestName,
            publicVersion.flatMap { p -> String? in
                guard let c = Path.clean(p), c.hasPrefix(root + "/") else { return nil }
                return String(c.dropFirst(root.count + 1))
            } ?? "version.json",
        ]
    }

    /// Hashes a local frontend folder, which needs nothing of the image: a build starts it
    /// while the base's layers are still being read, and hands it to `run` as `local`.
    /// `extras`: server files that name frontend files (when they are known: a name that only
    /// they use keeps it).
    public static func hashLocal(_ a: AssetPlan, publicVersion: String?, extras: [AssetFile] = []) -> Result<
        AssetResult, Error
    > {
        Result {
            guard let local = a.localFolder else { throw StampError.usage("no local frontend folder to hash") }
            let skip = skipped(a, publicVersion: publicVersion)
            // Scripts and styles stay on disk until hashed, and go to the spool once rewritten.
            let inputs = try AssetTree.read(local, lazyText: true).filter { !skip.contains($0.path) }
            var options = options(a)
            options.spool = try AssetSpool()
            do { return try AssetHasher.hash(consume inputs, extras: extras, options: options) } catch let e
                as AssetError
            {
                throw StampError.badInput("assets in \(a.root): \(e)")
            }
        }
    }

    /// `local`: the local folder's hash, when `hashLocal` already made it.
    public static func run(
        _ a: AssetPlan, view: MergedView, platform: String, publicVersion: String?,
        local: Result<AssetResult, Error>? = nil
    ) throws -> Output {
        let root = Path.clean(a.root)!
        let skip = skipped(a, publicVersion: publicVersion)
        var inputs: [AssetFile] = []
        // The image's files under the root, sorted by path: their owners and modes.
        var taken: [MergedView.TakenFile] = []
        if a.localFolder != nil {
            // Hashed below (or before the scan), with nothing of the image.
        } else {
            guard view.lookup(root)?.entry.type == .directory else {
                throw StampError.badInput("\(platform): --hash-assets: the image has no folder \(a.root)")
            }
            // Taken out of the view: the hasher lets each file's bytes go once its output exists.
            taken = view.takeFiles(under: root)
            // Spooled by the scan: binaries, and text of `AssetTree.largeFile` or more (read from
            // the spool when hashed, one at a time).
            for t in taken where !skip.contains(t.path) { if let f = t.assetFile { inputs.append(f) } }
            for k in taken.indices { taken[k].content = nil }
            guard !inputs.isEmpty else {
                throw StampError.badInput("\(platform): --hash-assets: \(a.root) holds no files")
            }
        }
        var extras: [AssetFile] = []
        var modes: [String: UInt32] = [:]
        for r in a.rewrite {
            let p = Path.clean(r)!
            if let b = view.contents[p] {
                extras.append(AssetFile(path: p, bytes: b))
                modes[p] = view.entries[p]?.mode
            } else if a.required.contains(r) {
                throw StampError.badInput("\(platform): --rewrite: \(r) is not a file in the image")
            }
        }
        var result: AssetResult
        if a.localFolder != nil {
            result = try (local ?? hashLocal(a, publicVersion: publicVersion, extras: extras)).get()
            // Hashed before the server files were read: if they use a renamed file's name where
            // stamp cannot rewrite it, hash again knowing them.
            if !AssetHasher.unproven(result, extras: extras).isEmpty {
                result = try hashLocal(a, publicVersion: publicVersion, extras: extras).get()
            }
            result.extras = AssetHasher.rewriteExtras(extras, renames: result.renames, length: options(a).length)
        } else {
            var options = options(a)
            options.spool = try AssetSpool()
            do { result = try AssetHasher.hash(consume inputs, extras: extras, options: options) } catch let e
                as AssetError
            {
                throw StampError.badInput("\(platform): assets in \(a.root): \(e)")
            }
        }

        var entries: [LayerEntry] = []
        if a.localFolder != nil {
            // A local build replaces the image's frontend.
            entries.append(LayerEntry(path: root + "/.wh..wh..opq", content: .bytes([]), mode: 0o644))
        }
        var renamed = 0
        for (old, f) in zip(result.sources, result.files) {
            guard let old, old != f.path else { continue }
            renamed += 1
            if a.localFolder == nil {
                entries.append(LayerEntry(path: whiteout(root + "/" + old), content: .bytes([]), mode: 0o644))
            }
        }
        for (k, f) in result.files.enumerated() {
            // The image's own files that come out unchanged are left out of the layer (a local
            // build replaces the folder: everything is written).
            if a.localFolder == nil && result.unchanged[k] { continue }
            // A replaced file keeps its owner and mode.
            let was = result.sources[k].flatMap { old -> MergedView.TakenFile? in
                if a.localFolder != nil {
                    return view.entries[root + "/" + old].map {
                        MergedView.TakenFile(path: old, mode: $0.mode, uid: $0.uid, gid: $0.gid, content: nil)
                    }
                }
                // `taken` is sorted by path.
                return indexSorted(taken, of: old, key: \.path).map { taken[$0] }
            }
            entries.append(
                LayerEntry(
                    path: root + "/" + f.path, content: f.stored.map { .part($0) } ?? .bytes(f.bytes),
                    mode: (was?.mode ?? 0o644) & 0o777, uid: was?.uid ?? 0, gid: was?.gid ?? 0))
        }
        for (e, before) in zip(result.extras, extras) where e.bytes != before.bytes {
            let was = view.entries[e.path]
            entries.append(
                LayerEntry(
                    path: e.path, content: .bytes(e.bytes), mode: (modes[e.path] ?? 0o644) & 0o777,
                    uid: was?.uid ?? 0, gid: was?.gid ?? 0))
        }
        var info: JSONValue = .object([
            ("root", .string(a.root)),
            ("manifest", .string(a.root + "/" + manifestName)),
            ("manifestDigest", .string("sha256:" + result.manifestFile.sha256Hex)),
            ("length", JSONValue(8)),
        ])
        if !a.keep.isEmpty { info["keep"] = .array(a.keep.map { .string($0) }) }
        return Output(entries: entries, info: info, renamed: renamed)
    }

    static func whiteout(_ p: String) -> String {
        p.utf8.contains(0x2F) ? Path.dirname(p) + "/.wh." + Path.basename(p) : ".wh." + p
    }

    /// The root the asset checks look at, from version.json's `assets` object.
    static func verifyRoot(_ info: JSONValue) -> String? { info["root"]?.stringValue.flatMap { Path.clean($0) } }

    /// The asset checks of `stamp verify`: the frontend as the whole image has it (`view`: every
    /// file under the root, large ones in a spool, as `Verifier.checkLayer` reads them).
    static func verify(_ info: JSONValue, view: MergedView, platform: String) -> [Finding] {
        guard let rootPath = info["root"]?.stringValue, let root = Path.clean(rootPath) else {
            return [Finding(.assetsNoRoot, "\(platform): version.json assets has no root", platform: platform)]
        }
        var files: [AssetFile] = []
        // Taken out of the view, which keeps nothing of them.
        for t in view.takeFiles(under: root) { if let f = t.assetFile { files.append(f) } }
        var o = AssetOptions()
        // The manifest version.json names (`asset-manifest.json` in images stamped before stamp
        // named its own `stamp-assets.json`).
        o.manifestName =
            info["manifest"]?.stringValue.flatMap { m in
                m.hasPrefix(rootPath + "/") ? String(m.dropFirst(rootPath.count + 1)) : nil
            } ?? manifestName
        o.keep = (info["keep"]?.arrayValue ?? []).compactMap(\.stringValue).map(Glob.init)
        var findings = AssetVerifier.verify(files, options: o).map { f in
            var f = f
            f.platform = platform
            f.path = rootPath + "/" + (f.path ?? "")
            f.message = "\(platform): \(rootPath)/\(f.message)"
            return f
        }
        // The manifest's digest, from its bytes or, when it was spooled, from the digests taken then.
        let manifestFile = files.first { $0.path == o.manifestName }
        let manifestDigest = manifestFile.map { "sha256:" + $0.sha256Hex }
        if let want = info["manifestDigest"]?.stringValue, let found = manifestDigest, found != want {
            findings.append(
                Finding(
                    .assetsManifestDigestMismatch,
                    "\(platform): \(rootPath)/\(o.manifestName) digest is \(found), version.json says \(want)",
                    platform: platform, path: rootPath + "/" + o.manifestName, expected: want, found: found
                ))
        }
        return findings
    }
}
