import Foundation
import IO
import Layers
import OCI
import Synchronization

/// Where blobs were last seen in registries (as containers/image keeps a blob-info cache): a
/// blob stamp pushed to or pulled from `host/repo` is mounted from there into another
/// repository of the same registry instead of uploaded again. One small JSON file in stamp's
/// cache folder (`blob-locations.json`), read at start and replaced whole at the end; it is
/// advisory: a mount the registry refuses (a repository since deleted, no pull access) becomes
/// an upload, and two runs at once lose one's additions at worst.
public final class BlobLocations: Sendable {
    /// Repositories kept per blob, and blobs kept in all (the oldest go first).
    static let perBlob = 4, maxBlobs = 50_000

    private struct State {
        var seen: [String: [String]] = [:]  // digest -> ["host/repository", newest first]
        var order: [String] = []
        var changed = false
    }

    private let file: String?
    private let state: Mutex<State>

    /// The cache in `directory` (nil: remember for this run only).
    public init(directory: String?) {
        file = directory.map { $0 + "/blob-locations.json" }
        var s = State()
        if let file, let bytes = try? ReadableFile(file).readAll(limit: 16 << 20),
            let doc = try? JSONValue.parse(bytes),
            doc["version"]?.int64Value == 1, case .object(let blobs)? = doc["blobs"]
        {
            for (digest, repos) in blobs where Digest.isValid(digest) {
                let list = (repos.arrayValue ?? []).compactMap(\.stringValue).prefix(Self.perBlob)
                if !list.isEmpty {
                    s.seen[digest] = Array(list)
                    s.order.append(digest)
                }
            }
        }
        state = Mutex(s)
    }

    /// The cache of this machine's user (`$STAMP_CACHE_DIR`, `$XDG_CACHE_HOME/stamp` or `~/.cache/stamp`).
    public static func standard() -> BlobLocations {
        BlobLocations(directory: ScanCache.defaultDirectory(environment: ProcessInfo.processInfo.environment))
    }

    /// A repository of `target`'s registry, other than `target`'s, that had `digest`.
    public func source(of digest: String, for target: RegistryReference) -> RegistryReference? {
        let prefix = target.host + "/"
        let repos = state.withLock { $0.seen[digest] ?? [] }
        guard let r = repos.first(where: { $0.hasPrefix(prefix) && $0.dropFirst(prefix.count) != target.repository })
        else { return nil }
        return RegistryReference(host: target.host, repository: String(r.dropFirst(prefix.count)))
    }

    /// `digest` is in `repository` now.
    public func record(_ digest: String, in repository: RegistryReference) {
        let key = repository.host + "/" + repository.repository
        state.withLock { s in
            var list = s.seen[digest] ?? []
            if list.first == key { return }
            if list.isEmpty { s.order.append(digest) }
            list.removeAll { $0 == key }
            s.seen[digest] = Array(([key] + list).prefix(Self.perBlob))
            s.changed = true
        }
    }

    /// Writes the cache back when something was recorded (errors ignored: it is a cache).
    public func save() {
        guard let file else { return }
        let doc: JSONValue? = state.withLock { s in
            guard s.changed else { return nil }
            s.changed = false
            if s.order.count > Self.maxBlobs {
                for d in s.order.prefix(s.order.count - Self.maxBlobs) { s.seen[d] = nil }
                s.order.removeFirst(s.order.count - Self.maxBlobs)
            }
            let seen = s.seen
            return .object([
                ("version", JSONValue(1)),
                ("blobs", .object(s.order.compactMap { d in seen[d].map { (d, .array($0.map { .string($0) })) } })),
            ])
        }
        guard let doc else { return }
        try? FileManager.default.createDirectory(atPath: Path.dirname(file), withIntermediateDirectories: true)
        guard let f = try? WritableFile.temporary(beside: file) else { return }
        do {
            try f.write(JSONValue.encode(doc))
            try f.commit(to: file, sync: false)
        } catch {}
    }
}
