import Hashing
import OCI

/// Checks a hashed tree from the files alone: every hashed name matches what the rule in
/// `AssetHasher` gives for the bytes, every reference resolves, and the manifest agrees.
public enum AssetVerifier {
    /// One line per finding, each naming the file.
    public static func verify(_ files: [AssetFile], options: AssetOptions = .init()) -> [String] {
        var findings: [String] = []
        var byPath: [String: [UInt8]] = [:]
        var file: [String: AssetFile] = [:]
        for f in files { byPath[f.path] = f.bytes; file[f.path] = f }
        let paths = byPath.keys.sorted(by: utf8Less)
        let scanner = ReferenceScanner(files: Set(paths))
        let naming = Naming(length: options.length)

        var hashed = Set<String>()
        for p in paths where !AssetHasher.isEntry(p, options) && !ext(p).isEmpty {
            if naming.unhashed(p) == p {
                findings.append("\(p): not content-hashed (expected a name like \(naming.name(p, hash: String(repeating: "0", count: 64))))")
            } else {
                hashed.insert(p)
            }
        }
        var refs: [String: [Reference]] = [:]
        for p in paths {
            refs[p] = scanner.scan(byPath[p]!, path: p, kind: AssetKind.of(p))
            for r in refs[p]! where r.target == nil {
                findings.append("\(p): reference \"\(r.written)\" does not resolve to a file")
            }
        }
        var edges: [String: [String]] = [:]
        for p in hashed { edges[p] = Array(Set((refs[p] ?? []).compactMap(\.target).filter { hashed.contains($0) })).sorted(by: utf8Less) }
        for group in AssetHasher.stronglyConnected(hashed.sorted(by: utf8Less), edges: edges) {
            let cyclic = group.count > 1 || (edges[group[0]] ?? []).contains(group[0])
            var expected: [String: String] = [:]
            if !cyclic {
                expected[group[0]] = file[group[0]]!.sha256Hex
            } else {
                let members = Set(group)
                let d = Digester(.sha256)
                for p in group.sorted(by: utf8Less) {
                    let identity = Dictionary(uniqueKeysWithValues: paths.map { ($0, $0) })
                    let normalized = AssetHasher.rewrite(byPath[p]!, refs[p]!, identity, naming, unhashing: members)
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
                    findings.append("\(p): name does not match its content (it should be \(Naming(length: options.length).split(want).1))")
                }
            }
        }

        // The manifest.
        guard let m = byPath[options.manifestName] else {
            findings.append("\(options.manifestName): missing")
            return findings
        }
        guard let entries = ManifestReader.entries(m) else {
            findings.append("\(options.manifestName): not a manifest stamp can read")
            return findings
        }
        var listed = Set<String>()
        for (orig, e) in entries.sorted(by: { utf8Less($0.key, $1.key) }) {
            listed.insert(e.path)
            guard let f = file[e.path] else {
                findings.append("\(options.manifestName): \(orig) maps to \(e.path), which is not in the folder")
                continue
            }
            if e.size != f.size { findings.append("\(options.manifestName): \(e.path) has size \(f.size), the manifest says \(e.size)") }
            if e.sha256 != f.sha256Hex { findings.append("\(options.manifestName): \(e.path) has sha256 \(f.sha256Hex), the manifest says \(e.sha256)") }
            if e.integrity != f.sri { findings.append("\(options.manifestName): \(e.path) integrity differs from the manifest's") }
            if naming.unhashed(e.path) != naming.unhashed(orig) && e.path != orig {
                findings.append("\(options.manifestName): \(orig) maps to \(e.path), which is not a name of it")
            }
        }
        for p in hashed where !listed.contains(p) { findings.append("\(p): not in \(options.manifestName)") }
        return findings
    }
}

/// Reads an asset manifest (JSON: `files` → original path → `path`, `size`, `sha256`, `integrity`).
enum ManifestReader {
    struct Entry { var path: String; var size: Int; var sha256: String; var integrity: String }

    static func entries(_ bytes: [UInt8]) -> [String: Entry]? {
        guard let files = (try? JSONValue.parse(bytes))?["files"]?.objectValue else { return nil }
        var out: [String: Entry] = [:]
        for (k, e) in files {
            guard let path = e["path"]?.stringValue, let size = e["size"]?.int64Value, let sha = e["sha256"]?.stringValue,
                  let integrity = e["integrity"]?.stringValue else { return nil }
            out[k] = Entry(path: path, size: Int(size), sha256: sha, integrity: integrity)
        }
        return out
    }
}
