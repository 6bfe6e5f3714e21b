/// Media types of the OCI image spec (media-types.md) and their Docker v2 schema 2 twins.
public enum MediaType {
    public static let ociIndex = "application/vnd.oci.image.index.v1+json"
    public static let ociManifest = "application/vnd.oci.image.manifest.v1+json"
    public static let ociConfig = "application/vnd.oci.image.config.v1+json"
    public static let ociLayer = "application/vnd.oci.image.layer.v1.tar"
    public static let ociLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip"
    public static let ociLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd"
    public static let ociLayerNondistributable = "application/vnd.oci.image.layer.nondistributable.v1.tar"
    public static let ociLayerNondistributableGzip = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
    public static let ociLayerNondistributableZstd = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"

    public static let dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
    public static let dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
    public static let dockerConfig = "application/vnd.docker.container.image.v1+json"
    public static let dockerLayer = "application/vnd.docker.image.rootfs.diff.tar"
    public static let dockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip"
    public static let dockerLayerZstd = "application/vnd.docker.image.rootfs.diff.tar.zstd"
    public static let dockerForeignLayerGzip = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

    public static func isIndex(_ t: String) -> Bool { t == ociIndex || t == dockerManifestList }
    public static func isManifest(_ t: String) -> Bool { t == ociManifest || t == dockerManifest }
    public static func isConfig(_ t: String) -> Bool { t == ociConfig || t == dockerConfig }

    /// The compression a layer media type declares, or nil when the type is not a layer stamp knows.
    public static func layerCompression(_ t: String) -> Compression? {
        switch t {
        case ociLayer, dockerLayer, ociLayerNondistributable: return Compression.none
        case ociLayerGzip, dockerLayerGzip, dockerForeignLayerGzip, ociLayerNondistributableGzip: return .gzip
        case ociLayerZstd, dockerLayerZstd, ociLayerNondistributableZstd: return .zstd
        default: return nil
        }
    }

    /// The OCI spelling of a layer type, used when a Docker manifest is rewritten as OCI.
    public static func ociLayerType(for t: String) -> String {
        switch t {
        case dockerLayer: return ociLayer
        case dockerLayerGzip: return ociLayerGzip
        case dockerLayerZstd: return ociLayerZstd
        case dockerForeignLayerGzip: return ociLayerNondistributableGzip
        default: return t
        }
    }

    public static func ociLayerType(_ c: Compression) -> String {
        switch c {
        case .none: return ociLayer
        case .gzip: return ociLayerGzip
        case .zstd: return ociLayerZstd
        }
    }
}

/// Layer compression.
public enum Compression: String, Sendable, CaseIterable, Codable {
    case none, gzip, zstd

    /// Sniffs the first bytes of a blob.
    public static func sniff(_ head: [UInt8]) -> Compression {
        if head.count >= 2, head[0] == 0x1f, head[1] == 0x8b { return .gzip }
        if head.count >= 4, head[0] == 0x28, head[1] == 0xb5, head[2] == 0x2f, head[3] == 0xfd { return .zstd }
        return .none
    }
}

/// OCI annotation and label keys (annotations.md).
public enum AnnotationKey {
    public static let version = "org.opencontainers.image.version"
    public static let revision = "org.opencontainers.image.revision"
    public static let created = "org.opencontainers.image.created"
    public static let source = "org.opencontainers.image.source"
    public static let baseName = "org.opencontainers.image.base.name"
    public static let baseDigest = "org.opencontainers.image.base.digest"
    public static let refName = "org.opencontainers.image.ref.name"
    /// BuildKit marks attestation manifests with this annotation.
    public static let dockerReferenceType = "vnd.docker.reference.type"
    /// stamp's own: where the stamp's version.json lives in the image.
    public static let stampVersionJSON = "dev.stamp.version-json"
}

/// The two spellings of an image: OCI's media types, or Docker's v2 schema 2 (which podman and
/// buildah need to read a config's `Healthcheck`; dockerd reads it in both).
public enum ImageFormat: String, Sendable, CaseIterable {
    case oci, docker

    /// The format a manifest or index media type is written in.
    public init(mediaType: String) {
        self = mediaType == MediaType.dockerManifest || mediaType == MediaType.dockerManifestList ? .docker : .oci
    }

    public var index: String { self == .docker ? MediaType.dockerManifestList : MediaType.ociIndex }
    public var manifest: String { self == .docker ? MediaType.dockerManifest : MediaType.ociManifest }
    public var config: String { self == .docker ? MediaType.dockerConfig : MediaType.ociConfig }

    /// A layer type in this format (the compression kept).
    public func layer(_ t: String) -> String {
        switch self {
        case .oci: return MediaType.ociLayerType(for: t)
        case .docker:
            switch t {
            case MediaType.ociLayer: return MediaType.dockerLayer
            case MediaType.ociLayerGzip: return MediaType.dockerLayerGzip
            case MediaType.ociLayerZstd: return MediaType.dockerLayerZstd
            case MediaType.ociLayerNondistributableGzip: return MediaType.dockerForeignLayerGzip
            default: return t
            }
        }
    }

    public func layer(_ c: Compression) -> String { layer(MediaType.ociLayerType(c)) }

    /// Docker's manifests and lists have no annotations.
    public var hasAnnotations: Bool { self == .oci }
}
