import Foundation
import Hashing
import IO
import Layers
import OCI
import Registry

/// One runnable image of a (possibly multi-platform) source: its manifest, config and layers.
public struct PlatformImage: Sendable {
    /// The manifest's descriptor as the index lists it (platform, annotations and all).
    public var descriptor: Descriptor
    public var manifest: JSONValue
    public var configDescriptor: Descriptor
    public var config: JSONValue
    public var layers: [Descriptor]

    /// The folders of the config's PATH, in order; without one, the default the runtimes
    /// (runc's spec, Docker, podman) give a container.
    public var searchPath: [String] {
        let env = (config["config"]?["Env"]?.arrayValue ?? []).compactMap(\.stringValue)
        let path = env.last { $0.hasPrefix("PATH=") }.map { String($0.dropFirst(5)) } ?? PlatformImage.defaultPath
        return path.split(separator: ":").map(String.init)
    }
    public static let defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    public var platform: Platform {
        if let p = descriptor.platform { return p }
        return Platform(
            os: config["os"]?.stringValue ?? "unknown", architecture: config["architecture"]?.stringValue ?? "unknown",
            variant: config["variant"]?.stringValue)
    }

    public var diffIDs: [String] {
        config["rootfs"]?["diff_ids"]?.arrayValue?.compactMap { $0.stringValue } ?? []
    }
    public var labels: [String: String] { config["config"]?["Labels"]?.stringMap ?? [:] }
    public var annotations: [String: String] { manifest["annotations"]?.stringMap ?? [:] }
}

/// How every `--json` output names a platform's image: the platform, its manifest's digest and
/// its config's digest (`inspect` adds more keys to the same object).
public struct PlatformEntry: Sendable, Equatable {
    public var platform: String
    public var manifest: String
    public var config: String

    public init(platform: String, manifest: String, config: String) {
        self.platform = platform
        self.manifest = manifest
        self.config = config
    }

    public init(_ image: PlatformImage) {
        self.init(
            platform: image.platform.description, manifest: image.descriptor.digest,
            config: image.configDescriptor.digest)
    }

    public var json: JSONValue {
        .object([("platform", .string(platform)), ("manifest", .string(manifest)), ("config", .string(config))])
    }
}

/// An image read from a source, documents checked against their digests.
public struct LoadedImage: Sendable {
    public let reference: ImageReference
    public let store: BlobStore
    /// What the layout's `index.json` (or the `docker save` manifest) selects.
    public let top: Descriptor
    /// The image index, when the image is multi-platform.
    public var index: JSONValue?
    public var images: [PlatformImage]
    /// Attestation manifests (BuildKit provenance/SBOM) found in the index.
    public var attestations: [Descriptor]
    /// A name the source gives the image (`ref.name` annotation, `docker save` RepoTags).
    public var sourceName: String?
    /// The transport the source turned out to be.
    public var kind: String

    /// The digest that identifies the whole image (the index when there is one).
    public var digest: String { top.digest }
}

/// Where an image is read from: one conformance per transport (an OCI layout folder, an
/// oci-archive, a `docker save` archive, a registry, and a plain path, which is whichever of
/// the local ones it holds). `open` reads the index and every manifest and config, each checked
/// against its digest, following a nested index; layers are only located.
public protocol ImageSource: Sendable {
    var reference: ImageReference { get }
    func open() throws -> LoadedImage
}

extension ImageReference {
    /// The source this reference names; `registry`, the client for a registry image.
    public func source(registry: RegistryClient? = nil) -> ImageSource {
        switch self {
        case .registry(let r):
            return RegistrySource(reference: self, repository: r, client: registry ?? RegistryClient.fromEnvironment())
        case .ociLayout: return LayoutSource(reference: self)
        case .ociArchive: return ArchiveSource(reference: self)
        case .dockerArchive: return DockerArchiveSource(reference: self)
        case .path: return PathSource(reference: self)
        }
    }
}

struct RegistrySource: ImageSource {
    let reference: ImageReference
    let repository: RegistryReference
    let client: RegistryClient
    func open() throws -> LoadedImage {
        let (store, top, name) = try RegistryImages.open(repository, client: client)
        return try ImageReader.resolve(top: top, reference: reference, store: store, sourceName: name, kind: "docker")
    }
}

struct LayoutSource: ImageSource {
    let reference: ImageReference
    func open() throws -> LoadedImage {
        try ImageReader.checkLocal(reference)
        guard Path.isDirectory(reference.path) else {
            throw StampError.badInput("\(reference): not a directory (an oci: layout is a folder)")
        }
        return try ImageReader.openLayoutDirectory(reference)
    }
}

struct ArchiveSource: ImageSource {
    let reference: ImageReference
    func open() throws -> LoadedImage {
        try ImageReader.checkLocal(reference)
        return try ImageReader.openLayoutArchive(reference, try ImageReader.tarIndex(reference))
    }
}

struct DockerArchiveSource: ImageSource {
    let reference: ImageReference
    func open() throws -> LoadedImage {
        try ImageReader.checkLocal(reference)
        return try ImageReader.openDockerArchive(reference, try ImageReader.tarIndex(reference))
    }
}

/// A path without a transport: a layout folder, or an archive by what its tar holds.
struct PathSource: ImageSource {
    let reference: ImageReference
    func open() throws -> LoadedImage {
        try ImageReader.checkLocal(reference)
        let p = reference.path, ref = reference.ref
        if Path.isDirectory(p) {
            guard Path.exists(p + "/index.json") else {
                throw StampError.badInput("\(p): a directory without index.json is not an OCI image layout")
            }
            return try ImageReader.openLayoutDirectory(.ociLayout(path: p, ref: ref))
        }
        let idx = try ImageReader.tarIndex(reference)
        if idx.contains("index.json") { return try ImageReader.openLayoutArchive(.ociArchive(path: p, ref: ref), idx) }
        if idx.contains("manifest.json") {
            return try ImageReader.openDockerArchive(.dockerArchive(path: p, ref: ref), idx)
        }
        throw StampError.badInput("\(p): a tar without index.json or manifest.json is not an image archive")
    }
}

/// What the sources share: the document loaders and checks.
public enum ImageReader {
    /// Opens an image (`reference.source(registry:).open()`).
    public static func open(_ reference: ImageReference, registry: RegistryClient? = nil) throws -> LoadedImage {
        try reference.source(registry: registry).open()
    }

    /// A local image must exist, and be a file or a folder: a FIFO or a device would block or
    /// never end.
    static func checkLocal(_ reference: ImageReference) throws {
        let path = reference.path
        guard Path.exists(path) else { throw StampError.badInput("\(reference): no such file or directory") }
        var st = stat()
        if stat(path, &st) == 0, (st.st_mode & S_IFMT) != S_IFREG, (st.st_mode & S_IFMT) != S_IFDIR {
            throw StampError.badInput(
                "\(reference): is \(Path.kind(st.st_mode)), not a regular file or an image folder")
        }
    }

    static func tarIndex(_ r: ImageReference) throws -> TarIndex {
        guard !Path.isDirectory(r.path) else {
            throw StampError.badInput("\(r): is a directory, not a tar archive (use oci:\(r.path))")
        }
        do { return try TarIndex(path: r.path) } catch let e as IOError { throw StampError.badInput(e.description) }
    }

    // MARK: OCI layouts

    static func openLayoutDirectory(_ r: ImageReference) throws -> LoadedImage {
        let store = DirectoryBlobStore(root: r.path, name: r.description)
        let indexPath = r.path + "/index.json"
        guard Path.exists(indexPath) else { throw StampError.badInput("\(r): no index.json (not an OCI image layout)") }
        let bytes = try ReadableFile(indexPath).readAll()
        if Path.exists(r.path + "/oci-layout") {
            try checkLayoutFile(try ReadableFile(r.path + "/oci-layout").readAll(), r)
        }
        return try load(layoutIndex: bytes, reference: r, store: store, kind: "oci")
    }

    static func openLayoutArchive(_ r: ImageReference, _ idx: TarIndex) throws -> LoadedImage {
        let store = TarBlobStore(index: idx, name: r.description)
        guard idx.contains("index.json") else {
            throw StampError.badInput("\(r): no index.json in the archive (not an oci-archive)")
        }
        if idx.contains("oci-layout") { try checkLayoutFile(try idx.read("oci-layout", limit: 4096), r) }
        return try load(layoutIndex: try idx.read("index.json"), reference: r, store: store, kind: "oci-archive")
    }

    private static func checkLayoutFile(_ bytes: [UInt8], _ r: ImageReference) throws {
        guard let v = (try? JSONValue.parse(bytes))?["imageLayoutVersion"]?.stringValue else {
            throw StampError.badInput("\(r): oci-layout is not valid JSON with imageLayoutVersion")
        }
        guard v.hasPrefix("1.") else { throw StampError.badInput("\(r): unsupported imageLayoutVersion \(v)") }
    }

    private static func load(layoutIndex bytes: [UInt8], reference r: ImageReference, store: BlobStore, kind: String)
        throws -> LoadedImage
    {
        let layoutIndex: JSONValue
        do { layoutIndex = try JSONValue.parse(bytes) } catch {
            throw StampError.badInput("\(r): index.json: \(error)")
        }
        let entries = (layoutIndex["manifests"]?.arrayValue ?? []).map(Descriptor.init(json:))
        guard !entries.isEmpty else { throw StampError.badInput("\(r): index.json lists no images") }
        for (i, e) in entries.enumerated() { try e.validate("\(r): index.json manifests[\(i)]") }

        var top: Descriptor
        var sourceName: String?
        if let want = r.ref {
            let matches = entries.filter { d in
                let n = d.annotations[AnnotationKey.refName] ?? ""
                return n == want || n.hasSuffix(":" + want)
            }
            guard let m = matches.first else {
                let known = entries.compactMap { $0.annotations[AnnotationKey.refName] }
                throw StampError.badInput(
                    "\(r): no image named \"\(want)\" (index.json has: "
                        + "\(known.isEmpty ? "no names" : known.joined(separator: ", ")))"
                )
            }
            top = m
            sourceName = m.annotations[AnnotationKey.refName]
        } else if entries.count == 1 || Set(entries.map(\.digest)).count == 1 {
            // One image, under one name or several (`--tag a --tag b` writes an entry for each).
            top = entries[0]
            sourceName = top.annotations[AnnotationKey.refName]
        } else if entries.allSatisfy({ $0.platform != nil && MediaType.isManifest($0.mediaType) }) {
            // index.json is itself the multi-platform index.
            let d = Digester.digest(bytes)
            top = Descriptor(mediaType: MediaType.ociIndex, digest: d, size: Int64(bytes.count))
            return try load(
                index: layoutIndex, top: top, reference: r, store: OverlayStore(base: store, extra: [d: bytes]),
                sourceName: nil, kind: kind)
        } else {
            let known = entries.compactMap { $0.annotations[AnnotationKey.refName] }
            throw StampError.badInput(
                "\(r): holds \(entries.count) images; name one as "
                    + "\(r.transport == "path" ? "PATH" : r.transport + ":PATH"):REF (refs: "
                    + "\(known.isEmpty ? "none named" : known.joined(separator: ", ")))"
            )
        }

        return try resolve(top: top, reference: r, store: store, sourceName: sourceName, kind: kind)
    }

    /// From the descriptor a layout or registry names down to the manifests of each platform.
    static func resolve(
        top: Descriptor, reference r: ImageReference, store: BlobStore, sourceName: String?, kind: String
    ) throws -> LoadedImage {
        var top = top
        // Follow nested indexes (skopeo copy --all, buildx) down to the one that lists platforms.
        var depth = 0
        while MediaType.isIndex(top.mediaType) {
            let index = try store.json(top)
            let children = (index["manifests"]?.arrayValue ?? []).map(Descriptor.init(json:))
            if children.count == 1, MediaType.isIndex(children[0].mediaType), depth < 8 {
                top = children[0]
                depth += 1
                continue
            }
            return try load(index: index, top: top, reference: r, store: store, sourceName: sourceName, kind: kind)
        }
        guard MediaType.isManifest(top.mediaType) else {
            throw StampError.unknownMediaType(top.mediaType, in: "\(r): index.json entry \(top.digest)")
        }
        let image = try loadManifest(top, store: store, what: "\(r)")
        return LoadedImage(
            reference: r, store: store, top: top, index: nil, images: [image], attestations: [], sourceName: sourceName,
            kind: kind)
    }

    private static func load(
        index: JSONValue, top: Descriptor, reference r: ImageReference, store: BlobStore, sourceName: String?,
        kind: String
    ) throws -> LoadedImage {
        var images: [PlatformImage] = []
        var attestations: [Descriptor] = []
        for (i, d) in (index["manifests"]?.arrayValue ?? []).map(Descriptor.init(json:)).enumerated() {
            try d.validate("\(r): index \(top.digest) manifests[\(i)]")
            if isAttestation(d) {
                attestations.append(d)
                continue
            }
            if MediaType.isIndex(d.mediaType) {
                throw StampError.badInput(
                    "\(r): index \(Digest.short(top.digest)) nests another index beside images; not supported")
            }
            guard MediaType.isManifest(d.mediaType) else {
                throw StampError.unknownMediaType(d.mediaType, in: "\(r): index \(top.digest)")
            }
            images.append(try loadManifest(d, store: store, what: "\(r)"))
        }
        guard !images.isEmpty else { throw StampError.badInput("\(r): the index lists no runnable image") }
        return LoadedImage(
            reference: r, store: store, top: top, index: index, images: images, attestations: attestations,
            sourceName: sourceName, kind: kind)
    }

    static func isAttestation(_ d: Descriptor) -> Bool {
        d.annotations[AnnotationKey.dockerReferenceType] == "attestation-manifest" || (d.platform?.isUnknown ?? false)
    }

    static func loadManifest(_ d: Descriptor, store: BlobStore, what: String) throws -> PlatformImage {
        let manifest = try store.json(d)
        guard let cj = manifest["config"], cj.isObject else {
            throw StampError.badInput("\(what): manifest \(d.digest) has no config")
        }
        let cd = Descriptor(json: cj)
        try cd.validate("\(what): manifest \(d.digest) config")
        guard MediaType.isConfig(cd.mediaType) else {
            throw StampError.unknownMediaType(cd.mediaType, in: "\(what): manifest \(d.digest) config")
        }
        let config = try store.json(cd)
        // The rules `stamp verify` holds an image to hold for a base too.
        guard config.isObject else {
            throw StampError.badInput("\(what): config \(Digest.short(cd.digest)) is not a JSON object")
        }
        let layers = (manifest["layers"]?.arrayValue ?? []).map(Descriptor.init(json:))
        for (i, l) in layers.enumerated() {
            try l.validate("\(what): manifest \(d.digest) layers[\(i)]")
            guard MediaType.layerCompression(l.mediaType) != nil else {
                throw StampError.unknownMediaType(
                    l.mediaType, in: "\(what): manifest \(Digest.short(d.digest)) layers[\(i)] \(l.digest)")
            }
        }
        let diffIDs = config["rootfs"]?["diff_ids"]?.arrayValue ?? []
        guard diffIDs.count == layers.count else {
            throw StampError.badInput(
                "\(what): manifest \(Digest.short(d.digest)) has \(layers.count) layers but its config lists "
                    + "\(diffIDs.count) rootfs.diff_ids"
            )
        }
        return PlatformImage(descriptor: d, manifest: manifest, configDescriptor: cd, config: config, layers: layers)
    }

    // MARK: docker save

    /// Reads `manifest.json` of a `docker save` archive (legacy `<id>/layer.tar` or the newer
    /// `blobs/sha256` layout) and presents it as the Docker manifest it implies.
    static func openDockerArchive(_ r: ImageReference, _ idx: TarIndex) throws -> LoadedImage {
        let store = TarBlobStore(index: idx, name: r.description)
        guard idx.contains("manifest.json") else {
            throw StampError.badInput("\(r): no manifest.json in the archive (not a docker-archive)")
        }
        let mj: JSONValue
        do { mj = try JSONValue.parse(try idx.read("manifest.json")) } catch let e as JSONParseError {
            throw StampError.badInput("\(r): manifest.json: \(e)")
        }
        let entries = mj.arrayValue ?? []
        guard !entries.isEmpty else { throw StampError.badInput("\(r): manifest.json lists no images") }
        var chosen = entries[0]
        if let want = r.ref {
            if want.hasPrefix("@"), let n = Int(want.dropFirst()), entries.indices.contains(n) {
                chosen = entries[n]
            } else if let m = entries.first(where: {
                ($0["RepoTags"]?.arrayValue ?? []).contains { t in
                    let s = t.stringValue ?? ""
                    return s == want || s.hasSuffix("/" + want)
                }
            }) {
                chosen = m
            } else {
                throw StampError.badInput("\(r): no image tagged \"\(want)\" in manifest.json")
            }
        } else if entries.count > 1 {
            throw StampError.badInput(
                "\(r): holds \(entries.count) images; name one as docker-archive:PATH:NAME:TAG or :@N")
        }
        guard let configPath = chosen["Config"]?.stringValue else {
            throw StampError.badInput("\(r): manifest.json entry has no Config")
        }
        let configBytes: [UInt8]
        do { configBytes = try idx.read(configPath) } catch {
            throw StampError.badInput("\(r): config \(configPath): \(error)")
        }
        let configDigest = Digester.digest(configBytes)
        store.memory[configDigest] = configBytes
        let config: JSONValue
        do { config = try JSONValue.parse(configBytes) } catch {
            throw StampError.badInput("\(r): \(configPath): \(error)")
        }
        let diffIDs = config["rootfs"]?["diff_ids"]?.arrayValue?.compactMap { $0.stringValue } ?? []
        let layerPaths = chosen["Layers"]?.arrayValue?.compactMap { $0.stringValue } ?? []
        guard layerPaths.count == diffIDs.count else {
            throw StampError.badInput(
                "\(r): manifest.json lists \(layerPaths.count) layers but the config has \(diffIDs.count) diff_ids")
        }
        var layers: [Descriptor] = []
        for (i, p) in layerPaths.enumerated() {
            let e: TarIndex.Entry
            do { e = try idx.resolve(p) } catch { throw StampError.badInput("\(r): layer \(p): \(error)") }
            let head = try idx.file.read(at: e.offset, count: Int(min(e.size, 8)))
            let compression = Compression.sniff(head)
            let digest: String
            if let hex = contentName(p) {
                digest = "sha256:" + hex
            } else if compression == .none {
                digest = diffIDs[i]  // an uncompressed layer's digest is its diff_id; checked when copied
            } else {
                let sink = DigestingSink(nil)
                _ = try copyStream(from: idx.file.section(offset: e.offset, length: e.size), to: sink)
                digest = sink.digester.finalizeDigest()
            }
            store.paths[digest] = p
            layers.append(Descriptor(mediaType: MediaType.ociLayerType(compression), digest: digest, size: e.size))
        }
        let manifest = Patch.dockerArchiveManifest(
            config: Descriptor(
                mediaType: MediaType.dockerConfig, digest: configDigest,
                size: Int64(configBytes.count)), layers: layers)
        let mbytes = JSONValue.encode(manifest)
        let md = Descriptor(
            mediaType: MediaType.dockerManifest, digest: Digester.digest(mbytes), size: Int64(mbytes.count))
        store.memory[md.digest] = mbytes
        var image = try loadManifest(md, store: store, what: r.description)
        image.descriptor.platform = image.platform
        let tags = chosen["RepoTags"]?.arrayValue?.compactMap { $0.stringValue } ?? []
        return LoadedImage(
            reference: r, store: store, top: md, index: nil, images: [image], attestations: [],
            sourceName: tags.first, kind: "docker-archive")
    }

    private static func contentName(_ p: String) -> String? {
        let parts = p.split(separator: "/")
        guard parts.count == 3, parts[0] == "blobs", parts[1] == "sha256", Digest.isValid("sha256:" + parts[2]) else {
            return nil
        }
        return String(parts[2])
    }
}

/// A store with a few extra documents in memory.
final class OverlayStore: BlobStore {
    let base: BlobStore
    let extra: [String: [UInt8]]
    init(base: BlobStore, extra: [String: [UInt8]]) {
        self.base = base
        self.extra = extra
    }
    var name: String { base.name }
    func locate(_ digest: String) throws -> BlobLocation? {
        if let b = extra[digest] { return .memory(b) }
        return try base.locate(digest)
    }
    func locate(_ d: Descriptor) throws -> BlobLocation? {
        if let b = extra[d.digest] { return .memory(b) }
        return try base.locate(d)
    }
}
