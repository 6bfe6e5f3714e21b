/// Where an image lives, in the containers/image (skopeo) transport syntax (DESIGN §3).
public enum ImageReference: Hashable, Sendable, CustomStringConvertible {
    /// `oci:DIR[:REF]` — an OCI image layout directory.
    case ociLayout(path: String, ref: String?)
    /// `oci-archive:TAR[:REF]` — an OCI image layout in a tar file.
    case ociArchive(path: String, ref: String?)
    /// `docker-archive:TAR[:NAME:TAG]` — what `docker save` writes.
    case dockerArchive(path: String, ref: String?)
    /// A plain path whose kind is detected when it is opened.
    case path(String, ref: String?)
    /// `docker://HOST/REPO[:TAG|@DIGEST]` — an image in a registry (OCI Distribution API).
    case registry(RegistryReference)

    public var path: String {
        switch self {
        case .ociLayout(let p, _), .ociArchive(let p, _), .dockerArchive(let p, _), .path(let p, _): return p
        case .registry(let r): return r.description
        }
    }

    public var ref: String? {
        switch self {
        case .ociLayout(_, let r), .ociArchive(_, let r), .dockerArchive(_, let r), .path(_, let r): return r
        case .registry(let r): return r.tag ?? r.digest
        }
    }

    public var transport: String {
        switch self {
        case .ociLayout: return "oci"
        case .ociArchive: return "oci-archive"
        case .dockerArchive: return "docker-archive"
        case .path: return "path"
        case .registry: return "docker"
        }
    }

    public var description: String {
        switch self {
        case .path(let p, let r): return r.map { "\(p):\($0)" } ?? p
        case .registry(let r): return r.description
        default: return "\(transport):\(path)" + (ref.map { ":\($0)" } ?? "")
        }
    }

    /// The transports stamp reads and writes, as their prefixes are spelled.
    public static let transportPrefixes = ["docker://", "oci:", "oci-archive:", "docker-archive:"]
    /// Transports of other tools that stamp names in its errors instead of taking them for paths.
    public static let foreignTransportPrefixes = ["docker-daemon:", "containers-storage:", "dir:"]

    /// The transport prefix `s` starts with (stamp's or another tool's), if any.
    public static func transportPrefix(of s: String) -> String? {
        (transportPrefixes + foreignTransportPrefixes).first { s.hasPrefix($0) }
    }

    /// Parses `transport:path[:ref]` or a plain path. `exists` tells whether a path is on disk,
    /// so that `oci:dir:with:colons` still works when the whole rest is an existing path.
    public static func parse(_ s: String, exists: (String) -> Bool = { _ in false }) throws -> ImageReference {
        guard !s.isEmpty else { throw OCIError.invalidReference("empty image reference") }
        let transports = ["oci-archive", "docker-archive", "oci"]
        for t in transports where s.hasPrefix(t + ":") {
            let rest = String(s.dropFirst(t.count + 1))
            guard !rest.isEmpty else { throw OCIError.invalidReference("\(s): missing path after \"\(t):\"") }
            let (path, ref) = splitRef(rest, exists: exists)
            guard !path.isEmpty else { throw OCIError.invalidReference("\(s): missing path") }
            if let ref { try checkRef(ref, in: s) }
            switch t {
            case "oci": return .ociLayout(path: path, ref: ref)
            case "oci-archive": return .ociArchive(path: path, ref: ref)
            default: return .dockerArchive(path: path, ref: ref)
            }
        }
        if s.hasPrefix("docker://") { return .registry(try RegistryReference.parse(s)) }
        if let t = transportPrefix(of: s), foreignTransportPrefixes.contains(t), !exists(s) {
            throw OCIError.invalidReference(
                "\(s): transport not supported (use docker://, oci:, oci-archive: or docker-archive:)")
        }
        if let colon = s.firstIndex(of: ":"), !s[..<colon].contains("/"), !s[..<colon].contains("."), !exists(s) {
            let t = s[..<colon]
            if t.count > 1 {
                throw OCIError.invalidReference(
                    "\(s): unknown transport \"\(t):\" (known: docker://, oci:, oci-archive:, docker-archive:)")
            }
        }
        let (path, ref) = splitRef(s, exists: exists)
        return .path(path, ref: ref)
    }

    private static func splitRef(_ rest: String, exists: (String) -> Bool) -> (String, String?) {
        if exists(rest) { return (rest, nil) }
        guard let colon = rest.lastIndex(of: ":") else { return (rest, nil) }
        let path = String(rest[..<colon])
        let ref = String(rest[rest.index(after: colon)...])
        // A docker-archive ref is NAME:TAG; split at the first colon that leaves an existing path.
        if let first = rest.firstIndex(of: ":"), first != colon, exists(String(rest[..<first])) {
            return (String(rest[..<first]), String(rest[rest.index(after: first)...]))
        }
        return (path, ref.isEmpty ? nil : ref)
    }

    private static func checkRef(_ ref: String, in s: String) throws {
        let ok = ref.utf8.allSatisfy { b in
            (48...57).contains(b) || (65...90).contains(b) || (97...122).contains(b) || "._-:/@+".utf8.contains(b)
        }
        guard ok else {
            throw OCIError.invalidReference("\(s): reference \"\(ref)\" has characters an image name cannot have")
        }
    }
}

extension ImageReference {
    /// The registry reference, when the image is in a registry.
    public var registry: RegistryReference? {
        if case .registry(let r) = self { return r }
        return nil
    }
}
