import Failures
/// A content descriptor (image-spec descriptor.md), read from and written back into raw JSON so
/// fields stamp does not know (`artifactType`, `data`, `urls`, vendor keys) survive.
public struct Descriptor: Hashable, Sendable {
    public var json: JSONValue

    public init(json: JSONValue) { self.json = json }

    public init(
        mediaType: String, digest: String, size: Int64, platform: Platform? = nil, annotations: [String: String] = [:]
    ) {
        var j: JSONValue = .object([
            ("mediaType", .string(mediaType)), ("digest", .string(digest)), ("size", JSONValue(size)),
        ])
        if let platform { j["platform"] = platform.json }
        if !annotations.isEmpty { j["annotations"] = .strings(annotations) }
        self.json = j
    }

    public var mediaType: String {
        get { json["mediaType"]?.stringValue ?? "" }
        set { json["mediaType"] = .string(newValue) }
    }
    public var digest: String {
        get { json["digest"]?.stringValue ?? "" }
        set { json["digest"] = .string(newValue) }
    }
    public var size: Int64 {
        get { json["size"]?.int64Value ?? -1 }
        set { json["size"] = JSONValue(newValue) }
    }
    public var platform: Platform? {
        get { json["platform"].flatMap { $0.isObject ? Platform(json: $0) : nil } }
        set { json["platform"] = newValue?.json }
    }
    public var annotations: [String: String] {
        get { json["annotations"]?.stringMap ?? [:] }
        set { json["annotations"] = newValue.isEmpty ? nil : .strings(newValue) }
    }

    public static let maxSize: Int64 = 1 << 50

    /// Checks the fields every descriptor needs; `what` names it in the message.
    public func validate(_ what: String) throws {
        guard !mediaType.isEmpty else { throw OCIError.invalidDocument("\(what): descriptor has no mediaType") }
        guard Digest.isValid(digest) else {
            throw OCIError.invalidDocument("\(what): descriptor digest \"\(digest)\" is not a sha256 digest")
        }
        guard size >= 0 else { throw OCIError.invalidDocument("\(what): descriptor \(digest) has no valid size") }
        // Sizes are summed (progress, archive offsets): one past a pebibyte is a lie, not a blob.
        guard size <= Descriptor.maxSize else {
            throw OCIError.invalidDocument("\(what): descriptor \(digest) claims \(size) bytes (more than 1 PiB)")
        }
    }
}

/// A platform (image-index.md): os, architecture, variant, plus whatever else it carries.
public struct Platform: Hashable, Sendable, CustomStringConvertible {
    public var json: JSONValue
    public init(json: JSONValue) { self.json = json }
    public init(os: String, architecture: String, variant: String? = nil) {
        var j: JSONValue = .object([("architecture", .string(architecture)), ("os", .string(os))])
        if let variant { j["variant"] = .string(variant) }
        json = j
    }

    public var os: String { json["os"]?.stringValue ?? "" }
    public var architecture: String { json["architecture"]?.stringValue ?? "" }
    public var variant: String? { json["variant"]?.stringValue }

    public var description: String { [os, architecture, variant].compactMap { $0 }.joined(separator: "/") }

    /// BuildKit attestations are listed as `unknown/unknown`.
    public var isUnknown: Bool { os == "unknown" && architecture == "unknown" }

    /// Parses `os/arch[/variant]`.
    public static func parse(_ s: String) -> Platform? {
        let parts = s.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard (2...3).contains(parts.count), parts.allSatisfy({ !$0.isEmpty }) else { return nil }
        return Platform(os: parts[0], architecture: parts[1], variant: parts.count == 3 ? parts[2] : nil)
    }

    /// `linux/arm64` matches `linux/arm64/v8`; a variant given must match.
    public func matches(_ wanted: Platform) -> Bool {
        guard os == wanted.os, architecture == wanted.architecture else { return false }
        if let v = wanted.variant { return variant == v || (variant == nil && architecture == "arm64" && v == "v8") }
        return true
    }
}

public enum Digest {
    /// `sha256:` and 64 lowercase hex digits.
    public static func isValid(_ d: String) -> Bool {
        guard d.hasPrefix("sha256:") else { return false }
        let hex = d.utf8.dropFirst(7)
        return hex.count == 64 && hex.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }
    public static func hex(_ d: String) -> String { String(d.dropFirst(7)) }
    public static func short(_ d: String) -> String { String(hex(d).prefix(12)) }
}

public enum OCIError: KindedError, Equatable {
    case invalidDocument(String)
    case invalidReference(String)
    public var description: String {
        switch self {
        case .invalidDocument(let m): return m
        case .invalidReference(let m): return m
        }
    }
    public var kind: ErrorKind {
        switch self {
        case .invalidDocument: return .badInput
        case .invalidReference: return .usage
        }
    }
}

extension Sequence {
    /// The sum of sizes, stopping at Int64.max: sizes come from documents, and a lie must not
    /// trap where they are only added up (progress totals, summaries).
    public func sizeSum(_ size: (Element) throws -> Int64) rethrows -> Int64 {
        try reduce(Int64(0)) { total, e in
            let (v, o) = total.addingReportingOverflow(Swift.max(0, try size(e)))
            return o ? Int64.max : v
        }
    }
}
