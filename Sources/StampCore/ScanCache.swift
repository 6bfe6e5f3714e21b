import Foundation
import Hashing
import IO
import Layers
import OCI

/// What reading a base layer found (the entries the health check and the asset stage asked
/// for, and the small files they capture), kept on disk under the layer's blob digest so the
/// next build on the same base skips decompressing it.
///
/// A layer blob is content-addressed, so what a layer holds never changes under its digest;
/// the key also names what was asked (`filter`), since a build with other flags keeps other
/// entries. The blob itself is still read and hashed when it is copied to the output, so a
/// corrupt or swapped blob fails the build as it does without the cache. Files are small
/// (a few KB per layer), written atomically, and the folder can be deleted at any time; an
/// unreadable or foreign file is a miss and is rewritten.
public struct ScanCache: Sendable {
    public let directory: String
    /// Layers whose captured files are larger are not kept (their bytes are the point).
    static let maxCaptured = 1 << 20
    static let format = "stamp-scan-3"  // 3: a path named twice in a layer keeps only its last capture

    public init(directory: String) { self.directory = directory }

    /// `--cache-dir`, else `$STAMP_CACHE_DIR`, `$XDG_CACHE_HOME/stamp`, `$HOME/.cache/stamp`.
    public static func defaultDirectory(environment: [String: String]) -> String? {
        if let d = environment["STAMP_CACHE_DIR"], !d.isEmpty { return d }
        if let x = environment["XDG_CACHE_HOME"], x.hasPrefix("/") { return x + "/stamp" }
        if let h = environment["HOME"], h.hasPrefix("/") { return h + "/.cache/stamp" }
        return nil
    }

    func file(_ layerDigest: String, filter: String) -> String? {
        guard let colon = layerDigest.firstIndex(of: ":") else { return nil }
        let hex = layerDigest[layerDigest.index(after: colon)...]
        guard !hex.isEmpty, hex.allSatisfy({ $0.isHexDigit }) else { return nil }
        let key = Digester.hex(Array((Self.format + "\n" + filter).utf8)).prefix(16)
        return "\(directory)/scan/\(layerDigest[..<colon])-\(hex)-\(key).json"
    }

    func load(_ layerDigest: String, filter: String, layer: Int) -> MergedView.LayerChanges? {
        guard let path = file(layerDigest, filter: filter), let f = try? ReadableFile(path),
            let bytes = try? f.readAll(limit: 64 << 20), let json = try? JSONValue.parse(bytes),
            json["format"]?.stringValue == Self.format, json["layer"]?.stringValue == layerDigest,
            json["filter"]?.stringValue == filter
        else { return nil }
        var c = MergedView.LayerChanges()
        c.fromCache = true
        for item in json["items"]?.arrayValue ?? [] {
            guard let a = item.arrayValue, a.count == 6 || a.count == 7, let p = a[0].stringValue,
                let t = a[1].stringValue,
                let mode = a[2].int64Value, let size = a[3].int64Value, let uid = a[4].int64Value,
                let gid = a[5].int64Value,
                let type = Self.type(t)
            else { return nil }
            var xattrs: [Xattr] = []
            if a.count == 7 {
                guard let x = Self.xattrs(a[6]) else { return nil }
                xattrs = x
            }
            c.items.append(
                (
                    p,
                    MergedView.Entry(
                        type: type, mode: UInt32(truncatingIfNeeded: mode), size: size, layer: layer,
                        uid: Int(truncatingIfNeeded: uid), gid: Int(truncatingIfNeeded: gid),
                        xattrs: xattrs)
                ))
        }
        c.whiteouts = (json["whiteouts"]?.arrayValue ?? []).compactMap(\.stringValue)
        c.opaque = (json["opaque"]?.arrayValue ?? []).compactMap(\.stringValue)
        for (p, v) in json["captured"]?.objectValue ?? [] {
            guard let s = v.stringValue, let b = Base64.decode(s) else { return nil }
            c.captured[p] = b
        }
        return c
    }

    /// Keeps `changes` for the next build; a failure to write (read-only home, full disk) only
    /// costs that build the time it saves.
    func store(_ changes: MergedView.LayerChanges, _ layerDigest: String, filter: String) {
        guard changes.digests.isEmpty, changes.captured.values.reduce(0, { $0 + $1.count }) <= Self.maxCaptured,
            let path = file(layerDigest, filter: filter)
        else { return }
        let json: JSONValue = .object([
            ("format", .string(Self.format)), ("layer", .string(layerDigest)), ("filter", .string(filter)),
            (
                "items",
                .array(
                    changes.items.map { p, e in
                        .array(
                            [
                                .string(p), .string(Self.code(e.type)), JSONValue(Int64(e.mode)), JSONValue(e.size),
                                JSONValue(Int64(e.uid)), JSONValue(Int64(e.gid)),
                            ]
                                + (e.xattrs.isEmpty
                                    ? []
                                    : [
                                        .array(
                                            e.xattrs.map {
                                                .array([.string($0.name), .string(Base64.encode($0.value))])
                                            })
                                    ]))
                    })
            ),
            ("whiteouts", .array(changes.whiteouts.map(JSONValue.string))),
            ("opaque", .array(changes.opaque.map(JSONValue.string))),
            (
                "captured",
                .object(changes.captured.sorted { $0.key < $1.key }.map { ($0.key, .string(Base64.encode($0.value))) })
            ),
        ])
        do {
            try FileManager.default.createDirectory(atPath: Path.dirname(path), withIntermediateDirectories: true)
            // Not synced: a file lost in a crash is a miss, and a torn one fails to parse.
            let f = try WritableFile.temporary(beside: path)
            try f.write(JSONValue.encode(json))
            try f.finish()
            if rename(f.path, path) == 0 { f.keep() }
        } catch {}
    }

    /// `[[name, base64 value], …]`; nil when malformed.
    static func xattrs(_ j: JSONValue) -> [Xattr]? {
        var out: [Xattr] = []
        for x in j.arrayValue ?? [] {
            guard let pair = x.arrayValue, pair.count == 2, let n = pair[0].stringValue,
                let v = pair[1].stringValue.flatMap(Base64.decode)
            else { return nil }
            out.append(Xattr(name: n, value: v))
        }
        return out
    }

    static func code(_ t: TarIndex.EntryType) -> String {
        switch t {
        case .file: return "f"
        case .directory: return "d"
        case .symlink(let target): return "l" + target
        case .hardlink(let target): return "h" + target
        case .other: return "o"
        }
    }

    static func type(_ code: String) -> TarIndex.EntryType? {
        guard let c = code.first else { return nil }
        let rest = String(code.dropFirst())
        switch c {
        case "f": return .file
        case "d": return .directory
        case "l": return .symlink(rest)
        case "h": return .hardlink(rest)
        case "o": return .other
        default: return nil
        }
    }
}
