import Foundation
import Hashing
import IO
import Layers
import OCI
import Registry
import Synchronization

/// Blobs of one repository in a registry. Manifests and configs are fetched when asked for;
/// layers are fetched on first use into `$TMPDIR`, digest-checked, and removed with the store
/// (or by the interrupt handler), so a layer that is only mounted or skipped is never downloaded.
/// The unchecked conformance is for the `WritableFile`s of finished downloads, kept (under the
/// `Mutex`) only so that the temp file lives as long as the store, and never written again.
final class RegistryBlobStore: BlobStore, @unchecked Sendable {
    let client: RegistryClient
    let reference: RegistryReference
    var name: String { reference.with(tag: nil, digest: nil).description }
    private struct State {
        var memory: [String: [UInt8]]
        var spooled: [String: (WritableFile, ReadableFile)] = [:]
        /// One gate per blob being downloaded: the threads asking for the same blob wait for
        /// the first.
        var inFlight: [String: Gate] = [:]
    }
    private final class Gate: Sendable { let mutex = Mutex(()) }
    private let state: Mutex<State>

    init(client: RegistryClient, reference: RegistryReference, documents: [String: [UInt8]]) {
        self.client = client
        self.reference = reference
        self.state = Mutex(State(memory: documents))
    }

    func locate(_ digest: String) throws -> BlobLocation? {
        state.withLock { s in
            if let m = s.memory[digest] { return .memory(m) }
            if let (_, f) = s.spooled[digest] { return .file(f, offset: 0, length: f.size) }
            return nil
        }
    }

    func locate(_ d: Descriptor) throws -> BlobLocation? {
        if let m = state.withLock({ $0.memory[d.digest] }) { return .memory(m) }
        if MediaType.isManifest(d.mediaType) || MediaType.isIndex(d.mediaType) {
            let m = try client.manifest(reference, reference: d.digest)
            state.withLock { $0.memory[d.digest] = m.bytes }
            return .memory(m.bytes)
        }
        if MediaType.isConfig(d.mediaType) { return try fetch(d) }
        // Lazy even when already downloaded: the location says the blob is the registry's,
        // so a push to the same registry mounts it.
        return .lazy(length: d.size) { [self] in try fetch(d) }
    }

    /// Downloads a blob once, however many threads ask for it.
    private func fetch(_ d: Descriptor) throws -> BlobLocation {
        let gate = state.withLock { s in
            if let g = s.inFlight[d.digest] { return g }
            let g = Gate()
            s.inFlight[d.digest] = g
            return g
        }
        return try gate.mutex.withLock { _ throws -> BlobLocation in
            if let l = try locate(d.digest) { return l }
            let tmp = FileManager.default.temporaryDirectory.path
            let file = try WritableFile.temporary(beside: "\(tmp)/stamp-blob-\(Digest.hex(d.digest).prefix(16))")
            try client.fetchBlob(reference, digest: d.digest, size: d.size, into: file)
            try file.finish()
            let readable = try ReadableFile(file.path)
            let kept = UncheckedSendable(file)
            state.withLock { $0.spooled[d.digest] = (kept.value, readable) }
            return .file(readable, offset: 0, length: readable.size)
        }
    }
}

public enum RegistryImages {
    /// Resolves a tag (or digest) and loads the image's index, manifests and configs.
    static func open(_ r: RegistryReference, client: RegistryClient) throws -> (
        store: BlobStore, top: Descriptor, sourceName: String
    ) {
        let m = try client.manifest(r)
        guard MediaType.isIndex(m.mediaType) || MediaType.isManifest(m.mediaType) else {
            throw StampError.unknownMediaType(m.mediaType, in: "\(r)")
        }
        let store = RegistryBlobStore(client: client, reference: r, documents: [m.digest: m.bytes])
        let top = Descriptor(mediaType: m.mediaType, digest: m.digest, size: Int64(m.bytes.count))
        var name = "\(r.host)/\(r.repository)"
        if let t = r.tag { name += ":" + t }
        if r.tag == nil, let d = r.digest { name += "@" + d }
        return (store, top, name)
    }

    /// Pushes an image: blobs first (skipped when present, mounted from `mountFrom` when it is
    /// the same registry, else uploaded), then each platform manifest by digest, then the
    /// index, then the tag. A tag that already names this digest is left as it is.
    public static func push(
        _ image: OutputImage, to target: RegistryReference, client: RegistryClient,
        mountFrom: RegistryReference?, diagnostics: Diagnostics
    ) throws -> PushSummary {
        var summary = PushSummary(reference: target, digest: image.top.digest)
        let tag = target.tag ?? (target.digest == nil ? "latest" : nil)
        if let want = target.digest, want != image.top.digest {
            throw StampError.usage("\(target): the image's digest is \(image.top.digest); push to a tag instead")
        }
        if let tag, try client.manifestDigest(target, reference: tag) == image.top.digest,
            try image.morePushTags.allSatisfy({ try client.manifestDigest(target, reference: $0) == image.top.digest })
        {
            summary.unchanged = true
            return summary
        }
        // Documents that are manifests or indexes go to /manifests; everything else is a blob.
        var manifests: [(Descriptor, [UInt8])] = []
        var blobDigests: [String] = []
        var documentDigests = Set<String>()
        try collectManifests(image.top, image: image, into: &manifests, seen: &documentDigests)
        for digest in image.blobs.keys.sorted() where !documentDigests.contains(digest) { blobDigests.append(digest) }

        let counts = Counts()
        let progress = diagnostics.progress(
            "pushing to \(target)", total: blobDigests.sizeSum { image.blobs[$0]!.size })
        defer { progress.finish() }
        // Blobs seen in another repository of this registry are mounted from there.
        let locations = BlobLocations.standard()
        defer { locations.save() }
        try forEachConcurrently(blobDigests, width: client.options.parallel) { digest in
            let (size, loc) = image.blobs[digest]!
            let start = Diagnostics.now()
            let from = (loc.remote ? mountFrom : nil) ?? locations.source(of: digest, for: target)
            let outcome = try client.pushBlob(target, digest: digest, size: size, mountFrom: from) { offset, length in
                let source = ObservedSource(try loc.open(offset: offset, length: length), progress)
                return offset == 0 && length == size ? CheckedSource(source, digest: digest, size: size) : source
            }
            counts.add(outcome, size)
            locations.record(digest, in: target)
            diagnostics.blob(outcome.verb, digest: digest, size: size, seconds: Diagnostics.now() - start)
        }
        let tally = counts.value
        summary.existed = tally.existed
        summary.mounted = tally.mounted
        summary.uploaded = tally.uploaded
        summary.uploadedBytes = tally.bytes
        for (d, bytes) in manifests where d.digest != image.top.digest {
            try client.putManifest(target, reference: d.digest, bytes: bytes, mediaType: d.mediaType)
        }
        let (top, topBytes) = manifests.first { $0.0.digest == image.top.digest }!
        try client.putManifest(target, reference: tag ?? top.digest, bytes: topBytes, mediaType: top.mediaType)
        // The other tags: the same manifest, blobs already there.
        for t in image.morePushTags where t != tag {
            try client.putManifest(target, reference: t, bytes: topBytes, mediaType: top.mediaType)
        }
        return summary
    }

    /// The top document and every manifest an index reaches, children first.
    private static func collectManifests(
        _ d: Descriptor, image: OutputImage, into list: inout [(Descriptor, [UInt8])],
        seen: inout Set<String>
    ) throws {
        guard !seen.contains(d.digest) else { return }
        seen.insert(d.digest)
        guard let (_, loc) = image.blobs[d.digest], case .memory(let bytes) = try loc.resolved() else {
            throw StampError.missingBlob(d.digest, in: "the image to push")
        }
        if MediaType.isIndex(d.mediaType) {
            let index = try JSONValue.parse(bytes)
            for c in (index["manifests"]?.arrayValue ?? []).map(Descriptor.init(json:)) {
                try collectManifests(c, image: image, into: &list, seen: &seen)
            }
        }
        var plain = d
        plain.annotations = [:]
        list.append((plain, bytes))
    }

    private final class Counts: Sendable {
        struct Tally { var existed = 0, mounted = 0, uploaded = 0, bytes: Int64 = 0 }
        private let tally = Mutex(Tally())
        var value: Tally { tally.withLock { $0 } }
        func add(_ o: PushOutcome, _ size: Int64) {
            tally.withLock { t in
                switch o {
                case .existed: t.existed += 1
                case .mounted: t.mounted += 1
                case .uploaded:
                    t.uploaded += 1
                    t.bytes += size
                }
            }
        }
    }
}

extension PushOutcome {
    /// How a `--progress plain` line says it.
    var verb: String {
        switch self {
        case .existed: return "already there"
        case .mounted: return "mounted"
        case .uploaded: return "pushed"
        }
    }
}

/// What a push did.
public struct PushSummary: Sendable {
    public var reference: RegistryReference
    public var digest: String
    public var unchanged = false
    public var existed = 0, mounted = 0, uploaded = 0
    public var uploadedBytes: Int64 = 0

    public var json: JSONValue {
        .object([
            ("reference", .string(reference.description)), ("digest", .string(digest)), ("unchanged", .bool(unchanged)),
            (
                "blobs",
                .object([
                    ("existed", JSONValue(Int64(existed))), ("mounted", JSONValue(Int64(mounted))),
                    ("uploaded", JSONValue(Int64(uploaded))), ("uploadedBytes", JSONValue(uploadedBytes)),
                ])
            ),
        ])
    }
}

/// A source that checks, at its end, that what it gave hashes to `digest` (a blob of the base
/// streamed to a registry is checked as it goes, as when it is copied to a file).
final class CheckedSource: ByteSource {
    let hashing: HashingSource
    let digest: String
    let size: Int64
    private var checked = false

    init(_ inner: ByteSource, digest: String, size: Int64) {
        hashing = HashingSource(inner)
        self.digest = digest
        self.size = size
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let n = try hashing.read(into: buffer)
        if n == 0, !checked {
            checked = true
            let found = hashing.digester.finalizeDigest()
            guard hashing.count == size, found == digest else {
                // Corrupt, not transient: the upload fails at once instead of being retried.
                throw StampError.digestMismatch(what: "blob \(digest)", expected: digest, found: found)
            }
        }
        return n
    }
}

extension RegistryClient {
    /// A client with the default options: TLS verified, credentials from the usual files.
    static func fromEnvironment() -> RegistryClient {
        RegistryClient(
            options: RegistryOptions(
                credentials: .init(creds: nil, authFile: nil, environment: ProcessInfo.processInfo.environment)))
    }
}
