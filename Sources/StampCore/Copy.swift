import Foundation
import Hashing
import IO
import OCI
import Registry

/// `stamp pull` and `stamp push`: an image moved as it is between a registry and a local
/// image (or two registries), every blob digest-checked on the way, no byte changed.
public enum ImageCopy {
    public struct Result: Sendable {
        public var source: String
        public var destination: String
        public var digest: String
        public var platforms: [PlatformEntry]
        public var pushed: PushSummary?
        /// The top document's media type and size (with `digest`, its descriptor).
        public var mediaType = ""
        public var size: Int64 = 0

        /// What `push --metadata-file` writes: the keys buildx writes for an image pushed
        /// (`containerimage.digest`, `containerimage.descriptor`, `image.name`), `schemaVersion`.
        public var metadata: JSONValue {
            var name = destination
            if name.hasPrefix("docker://") { name = String(name.dropFirst(9)) }
            var j = BuildxMetadata.keys(
                mediaType: mediaType, digest: digest, size: size, platforms: platforms, names: [name])
            j["schemaVersion"] = JSONValue(Int64(OutputSchema.version))
            return j
        }

        public var json: JSONValue {
            var j: JSONValue = .object([
                ("schemaVersion", JSONValue(Int64(OutputSchema.version))),
                ("source", .string(source)), ("destination", .string(destination)), ("digest", .string(digest)),
                ("platforms", .array(platforms.map(\.json))),
            ])
            if let p = pushed { j["push"] = p.json }
            return j
        }
    }

    public static func copy(
        from source: ImageReference, to destination: ImageReference, options: RegistryOptions,
        created: Timestamp, diagnostics: Diagnostics
    ) throws -> Result {
        var destination = destination
        if case .path(let p, let r) = destination {
            destination = Path.isDirectory(p) ? .ociLayout(path: p, ref: r) : .ociArchive(path: p, ref: r)
        }
        guard source != destination else { throw StampError.usage("source and destination are the same (\(source))") }
        var o = options
        o.notice = diagnostics.notice
        let client = RegistryClient(options: o)
        let sink = destination.destination(registry: client, mountFrom: source.registry)
        try sink.preflight(source: source)
        let image = try ImageReader.open(source, registry: client)
        if case .dockerArchive = destination, image.images.count > 1 {
            throw StampError.usage("docker-archive holds one image; \(source) has \(image.images.count) platforms")
        }
        var blobs: [String: (size: Int64, location: BlobLocation)] = [:]
        try collect(image.top, store: image.store, into: &blobs, depth: 0)
        var top = Descriptor(
            mediaType: image.top.mediaType, digest: image.top.digest, size: image.top.size,
            platform: image.index == nil ? image.images.first?.platform : nil)
        let name = destination.ref ?? image.sourceName
        if let name { top.annotations = [AnnotationKey.refName: name] }
        // Remote blobs bound for a local output are fetched several at a time (a registry
        // destination mounts or streams them instead).
        if destination.registry == nil {
            let remote = blobs.filter { $0.value.location.remote }.map { ($0.key, $0.value) }.sorted { $0.0 < $1.0 }
            let step = diagnostics.step("pulling \(remote.count) blobs from \(source)")
            try forEachConcurrently(remote, width: o.parallel) { digest, blob in
                let start = Diagnostics.now()
                _ = try blob.location.resolved()
                diagnostics.blob("pulled", digest: digest, size: blob.size, seconds: Diagnostics.now() - start)
            }
            step.done()
            if let r = source.registry, !remote.isEmpty {
                let locations = BlobLocations.standard()
                for (digest, _) in remote { locations.record(digest, in: r) }
                locations.save()
            }
        }
        let docker = image.images.map { ($0.platform.description, $0.configDescriptor.digest, $0.layers.map(\.digest)) }
        var output = OutputImage(top: top, blobs: blobs, dockerImages: docker)
        output.repoTags = name.flatMap(repoTag).map { [$0] } ?? []
        let pushed = try sink.write(output, created: created, reserved: nil, sync: false, diagnostics: diagnostics)
        var digest = top.digest
        if case .dockerArchive = destination, let img = image.images.first {
            // The file stores no manifest: name the one it implies (what reading it gives).
            digest = Digester.digest(
                JSONValue.encode(Patch.dockerArchiveManifest(config: img.configDescriptor, layers: img.layers)))
        }
        var result = Result(
            source: source.description, destination: destination.description, digest: digest,
            platforms: image.images.map { PlatformEntry($0) }, pushed: pushed)
        result.mediaType = top.mediaType
        result.size = top.size
        return result
    }

    /// Every blob a descriptor reaches: index children, manifest config and layers.
    private static func collect(
        _ d: Descriptor, store: BlobStore, into blobs: inout [String: (size: Int64, location: BlobLocation)],
        depth: Int
    ) throws {
        guard blobs[d.digest] == nil else { return }
        guard depth < 8 else { throw StampError.badInput("\(store.name): indexes nest more than 8 deep") }
        if MediaType.isIndex(d.mediaType) || MediaType.isManifest(d.mediaType) {
            let bytes = try store.document(d)
            blobs[d.digest] = (d.size, .memory(bytes))
            let doc = try JSONValue.parse(bytes)
            for c in (doc["manifests"]?.arrayValue ?? []).map(Descriptor.init(json:)) {
                try collect(c, store: store, into: &blobs, depth: depth + 1)
            }
            if let c = doc["config"], c.isObject {
                try collect(Descriptor(json: c), store: store, into: &blobs, depth: depth + 1)
            }
            for l in (doc["layers"]?.arrayValue ?? []).map(Descriptor.init(json:)) {
                try l.validate("\(store.name): manifest \(d.digest)")
                blobs[l.digest] = (l.size, try store.require(l))
            }
        } else {
            blobs[d.digest] = (d.size, .memory(try store.document(d)))
        }
    }

    /// A `NAME:TAG` for Docker's RepoTags from a reference's name, when it has a tag.
    private static func repoTag(_ name: String) -> String? {
        var n = name
        if n.hasPrefix("docker://") { n = String(n.dropFirst(9)) }
        if let at = n.firstIndex(of: "@") { n = String(n[..<at]) }
        return Stamper.repoTag(n, nil)
    }
}
