/// The version of the shape of every `--json` output (its `schemaVersion` key, and the
/// `schemas/*.schema.json` files that describe them): raised when a key changes meaning or goes.
public enum OutputSchema {
    public static let version = 1
}

/// One thing `stamp verify` or `stamp assets verify` found: a stable code for machines, the
/// facts it is about, and the line a person reads. Codes never change meaning; a new kind of
/// finding gets a new code (and an entry in `schemas/verify.schema.json`).
public struct Finding: Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable, CaseIterable {
        // The image as a whole.
        case imageUnreadable = "image.unreadable"
        // Blobs and layers.
        case blobMissing = "blob.missing"
        case blobUnreadable = "blob.unreadable"
        case blobSizeMismatch = "blob.size-mismatch"
        case blobDigestMismatch = "blob.digest-mismatch"
        case layerCompressionMismatch = "layer.compression-mismatch"
        case layerUndecompressable = "layer.undecompressable"
        case layerDiffIDMismatch = "layer.diff-id-mismatch"
        case configDiffIDCount = "config.diff-id-count"
        case configHistoryCount = "config.history-count"
        // The stamp.
        case stampMissing = "stamp.missing"
        case stampLabelMissing = "stamp.label-missing"
        case stampNoLayers = "stamp.no-layers"
        case stampLayerUnreadable = "stamp.layer-unreadable"
        case stampVersionJSONMissing = "stamp.version-json-missing"
        case stampVersionJSONInvalid = "stamp.version-json-invalid"
        case stampNoVersion = "stamp.no-version"
        case stampValueMismatch = "stamp.value-mismatch"
        case stampBaseDigestMismatch = "stamp.base-digest-mismatch"
        case stampCreatedMismatch = "stamp.created-mismatch"
        case stampVersionFileMismatch = "stamp.version-file-mismatch"
        case stampVersionFileMissing = "stamp.version-file-missing"
        case stampPublicVersionJSONMismatch = "stamp.public-version-json-mismatch"
        // The enhanced health check.
        case healthScriptMissing = "health.script-missing"
        case healthNotExecutable = "health.not-executable"
        case healthNoShebang = "health.no-shebang"
        case healthNotConfigured = "health.not-configured"
        // Content-hashed frontend assets.
        case assetsUnreadable = "assets.unreadable"
        case assetsNoRoot = "assets.no-root"
        case assetsManifestMissing = "assets.manifest-missing"
        case assetsManifestInvalid = "assets.manifest-invalid"
        case assetsManifestDigestMismatch = "assets.manifest-digest-mismatch"
        case assetsTargetMissing = "assets.target-missing"
        case assetsSizeMismatch = "assets.size-mismatch"
        case assetsSHA256Mismatch = "assets.sha256-mismatch"
        case assetsIntegrityMismatch = "assets.integrity-mismatch"
        case assetsNotHashedName = "assets.not-hashed-name"
        case assetsUnlisted = "assets.unlisted"
        case assetsUnresolvedReference = "assets.unresolved-reference"
        case assetsNameMismatch = "assets.name-mismatch"
        case assetsStaleName = "assets.stale-name"
        case assetsRuntimeName = "assets.runtime-name"
    }

    public enum Severity: String, Sendable { case error, warning }

    public var code: Code
    public var severity: Severity
    /// The platform (`linux/amd64`) of the manifest the finding is about.
    public var platform: String?
    /// A file: in the image's file system (absolute) or in an assets folder (relative).
    public var path: String?
    /// A blob or manifest.
    public var digest: String?
    public var expected: String?
    public var found: String?
    /// The line `verify` prints.
    public var message: String

    public init(
        _ code: Code, _ message: String, platform: String? = nil, path: String? = nil, digest: String? = nil,
        expected: String? = nil, found: String? = nil, severity: Severity = .error
    ) {
        self.code = code
        self.message = message
        self.platform = platform
        self.path = path
        self.digest = digest
        self.expected = expected
        self.found = found
        self.severity = severity
    }

    public var description: String { message }

    public var json: JSONValue {
        var j: JSONValue = .object([("code", .string(code.rawValue)), ("severity", .string(severity.rawValue))])
        if let platform { j["platform"] = .string(platform) }
        if let path { j["path"] = .string(path) }
        if let digest { j["digest"] = .string(digest) }
        if let expected { j["expected"] = .string(expected) }
        if let found { j["found"] = .string(found) }
        j["message"] = .string(message)
        return j
    }
}
