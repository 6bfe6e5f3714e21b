import Failures
import Foundation
import IO
import OCI

/// A failure of `stamp canary`, with its kind (exit status and wording follow from it).
public struct CanaryError: KindedError {
    public let kind: ErrorKind
    public let message: String
    public var description: String { message }
    public init(kind: ErrorKind, message: String) {
        self.kind = kind
        self.message = message
    }
    static func usage(_ m: String) -> CanaryError { .init(kind: .usage, message: m) }
    static func badInput(_ m: String) -> CanaryError { .init(kind: .badInput, message: m) }
}

/// An image a Deployment runs: pinned by digest (a tag is accepted only when asked), with the
/// version stamped into it, which labels its pods.
public struct ReleaseImage: Sendable, Equatable {
    /// `HOST/REPOSITORY`.
    public var name: String
    public var digest: String?
    public var tag: String?
    public var version: String
    /// What the app needs, from the stamp record (nil for a bare reference).
    public var facts: AppFacts?

    /// What a pod spec's `image` says: `NAME@sha256:…`, or `NAME:TAG` for an allowed tag.
    public var reference: String { digest.map { "\(name)@\($0)" } ?? "\(name):\(tag ?? "latest")" }

    public init(name: String, digest: String?, tag: String?, version: String) {
        self.name = name
        self.digest = digest
        self.tag = tag
        self.version = version
    }

    /// `spec` is stamp's record of a build (a lock file from `--lock`, the `--json` output of
    /// `build` or `push`, or a `--metadata-file`), or an image reference. `version` names the
    /// version when the record or reference does not (a reference's tag is not taken for it:
    /// tags move). `role` (`--stable`, `--canary`) is for messages.
    public static func load(_ spec: String, role: String, version: String?, allowTag: Bool) throws -> ReleaseImage {
        var image: ReleaseImage
        if Path.exists(spec) && !Path.isDirectory(spec) {
            image = try fromRecord(spec, role: role)
        } else {
            let ref: RegistryReference
            do { ref = try RegistryReference.parse(spec) } catch {
                throw CanaryError.usage(
                    "\(role) \(spec): neither a stamp record (lock file, build --json, metadata file) nor an image "
                        + "reference: \(error)")
            }
            image = ReleaseImage(name: ref.name, digest: ref.digest, tag: ref.tag, version: "")
        }
        if let version { image.version = version }
        if image.digest == nil && !allowTag {
            throw CanaryError.usage(
                "\(role) \(spec): no digest; a tag can move between render and rollout, so give NAME@sha256:… or "
                    + "stamp's lock file (--allow-tag takes the tag anyway)")
        }
        guard !image.version.isEmpty else {
            throw CanaryError.usage(
                "\(role) \(spec): no version known; give \(role)-version (a stamp lock file or build --json has it)")
        }
        try Labels.checkValue(image.version, what: "\(role)'s version")
        return image
    }

    /// A lock file (`output`), `build --json` (`push` or a registry `output`), or `--metadata-file`.
    static func fromRecord(_ path: String, role: String) throws -> ReleaseImage {
        let j: JSONValue
        do { j = try JSONValue.parse(try ReadableFile(path).readAll(limit: 4 << 20)) } catch {
            throw CanaryError.badInput("\(role) \(path): not a stamp record (JSON): \(error)")
        }
        var reference: String?
        var digest: String?
        var version: String?
        var facts: JSONValue?
        if j["lockVersion"] != nil {
            reference = j["output"]?["reference"]?.stringValue
            digest = j["output"]?["digest"]?.stringValue
            version = j["output"]?["version"]?.stringValue
            facts = j["output"]?["app"]
        } else if let name = j["image.name"]?.stringValue {
            reference = name
            digest = j["containerimage.digest"]?.stringValue
            version = j["stamp.version"]?.stringValue
            facts = j["stamp.app"]
        } else if j["schemaVersion"] != nil {
            reference = j["push"]?["reference"]?.stringValue ?? j["output"]?.stringValue
            digest = j["push"]?["digest"]?.stringValue ?? j["digest"]?.stringValue
            version = j["version"]?.stringValue
            facts = j["app"]
        }
        guard let reference, let digest, Digest.isValid(digest) else {
            throw CanaryError.badInput(
                "\(role) \(path): not a stamp record with an output and its digest (a lock file from --lock, the "
                    + "--json of build or push, or --metadata-file)")
        }
        for local in ["oci-archive:", "oci:", "docker-archive:"] where reference.hasPrefix(local) {
            throw CanaryError.usage(
                "\(role) \(path): the image was written to \(reference), which a cluster cannot pull; push it "
                    + "(stamp push, or build --output docker://…) and give that record")
        }
        let ref: RegistryReference
        do { ref = try RegistryReference.parse(reference) } catch {
            throw CanaryError.badInput("\(role) \(path): output \(reference) is not a registry reference: \(error)")
        }
        if let pinned = ref.digest, pinned != digest {
            throw CanaryError.badInput(
                "\(role) \(path): the record contradicts itself: its output \(ref.name)@\(pinned) is not the digest "
                    + "it records (\(digest))")
        }
        var image = ReleaseImage(name: ref.name, digest: digest, tag: ref.tag, version: version ?? "")
        image.facts = facts.flatMap(AppFacts.init(json:))
        return image
    }
}

/// Kubernetes' rules for names and label values.
enum Labels {
    /// A label value: at most 63 characters, alphanumerics with `-`, `_`, `.` inside.
    static func checkValue(_ v: String, what: String) throws {
        let ok =
            v.utf8.count <= 63
            && v.utf8.allSatisfy { isAlnum($0) || "-_.".utf8.contains($0) }
            && (v.isEmpty || (isAlnum(v.utf8.first!) && isAlnum(v.utf8.last!)))
        guard ok else {
            throw CanaryError.usage(
                "\(what) \"\(v)\" cannot be a Kubernetes label value (at most 63 letters, digits, '-', '_', '.', "
                    + "starting and ending with a letter or digit)")
        }
    }

    /// A DNS-1123 label (names of Services, namespaces): lowercase, digits, `-`; with `subdomain`,
    /// a DNS-1123 subdomain (Secrets, Gateways, listeners): labels joined by `.`, at most 253.
    static func checkName(_ v: String, what: String, room: Int = 0, subdomain: Bool = false) throws {
        let max = subdomain ? 253 : 63
        let parts = subdomain ? v.split(separator: ".", omittingEmptySubsequences: false).map(String.init) : [v]
        let ok =
            !v.isEmpty && v.utf8.count + room <= max
            && parts.allSatisfy { p in
                !p.isEmpty && p.utf8.count <= 63
                    && p.utf8.allSatisfy { (97...122).contains($0) || (48...57).contains($0) || $0 == 45 }
                    && p.utf8.first != 45 && p.utf8.last != 45
            }
        guard ok else {
            throw CanaryError.usage(
                "\(what) \"\(v)\" cannot name Kubernetes objects (lowercase letters, digits and '-'"
                    + (subdomain ? ", '.' between parts" : "") + ", at most \(max - room) characters)")
        }
    }

    static func isAlnum(_ b: UInt8) -> Bool { (48...57).contains(b) || (65...90).contains(b) || (97...122).contains(b) }
}
