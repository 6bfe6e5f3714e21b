import Foundation
import IO
import Layers
import OCI
import Yams

/// Every setting of `stamp build`, as flags give them or a `stamp.yaml` holds them. Keys of the
/// file are the flag names without dashes (`version`, `base-name`, `label`, ...). Flags override
/// the file: `merged(over:)`.
public struct StampSettings: Sendable, Equatable {
    public var base: String?
    public var output: String?
    public var version: String?
    public var revision: String?
    public var source: String?
    public var created: String?
    public var labels: [String] = []
    public var annotations: [String] = []
    public var env: [String] = []
    public var add: [String] = []
    /// `--tag` (repeatable; a list in stamp.yaml).
    public var tags: [String] = []
    public var platforms: [String] = []
    public var profile: String?
    public var versionFile: String?
    public var versionJSON: String?
    public var baseName: String?
    public var compression: String?
    public var compressionLevel: Int?
    public var format: String?
    public var healthScript: String?
    public var healthPort: Int?
    public var healthPath: String?
    public var healthInterval: String?
    public var healthTimeout: String?
    public var healthStartPeriod: String?
    public var healthRetries: Int?
    public var noHealthcheck: Bool?
    public var allowMissingClient: Bool?
    public var publicVersion: String?
    public var noPublicVersion: Bool?
    public var hashAssets: Bool?
    public var assets: String?
    public var assetRoot: String?
    public var rewrite: [String] = []
    public var keep: [String] = []
    public var sri: Bool?
    public var maxFrontendSize: String?
    public var lock: String?
    public var locked: Bool?
    public var tlsVerify: Bool?
    public var certDir: String?
    public var authfile: String?
    public var chunkSize: Int?
    public var cacheDir: String?
    public var noCache: Bool?
    public var fsync: Bool?
    /// `--creds` only: secrets have no key in a settings file.
    public var creds: String?

    public init() {}

    public static let keys = [
        "base", "output", "version", "revision", "source", "created", "label", "annotation", "env", "add",
        "tag", "platform", "profile", "version-file", "version-json", "base-name", "compression",
        "compression-level", "format", "health-script", "health-port", "health-path", "health-interval",
        "health-timeout",
        "health-start-period", "health-retries", "no-healthcheck", "allow-missing-client", "public-version",
        "no-public-version", "hash-assets", "assets", "asset-root", "rewrite", "keep", "sri", "max-frontend-size",
        "lock", "locked", "tls-verify", "cert-dir", "authfile", "chunk-size",
        "cache-dir", "no-cache", "fsync",
    ]

    /// `self` (flags) over `file`: scalars from flags win; lists are the file's then the flags'
    /// (later `KEY=` entries win over earlier ones).
    public func merged(over file: StampSettings) -> StampSettings {
        var m = file
        m.base = base ?? file.base
        m.output = output ?? file.output
        m.version = version ?? file.version
        m.revision = revision ?? file.revision
        m.source = source ?? file.source
        m.created = created ?? file.created
        m.labels = file.labels + labels
        m.annotations = file.annotations + annotations
        m.env = file.env + env
        m.add = file.add + add
        m.tags = tags.isEmpty ? file.tags : tags
        m.platforms = platforms.isEmpty ? file.platforms : platforms
        m.profile = profile ?? file.profile
        m.versionFile = versionFile ?? file.versionFile
        m.versionJSON = versionJSON ?? file.versionJSON
        m.baseName = baseName ?? file.baseName
        m.compression = compression ?? file.compression
        m.compressionLevel = compressionLevel ?? file.compressionLevel
        m.format = format ?? file.format
        m.healthScript = healthScript ?? file.healthScript
        m.healthPort = healthPort ?? file.healthPort
        m.healthPath = healthPath ?? file.healthPath
        m.healthInterval = healthInterval ?? file.healthInterval
        m.healthTimeout = healthTimeout ?? file.healthTimeout
        m.healthStartPeriod = healthStartPeriod ?? file.healthStartPeriod
        m.healthRetries = healthRetries ?? file.healthRetries
        m.noHealthcheck = noHealthcheck ?? file.noHealthcheck
        m.allowMissingClient = allowMissingClient ?? file.allowMissingClient
        m.publicVersion = publicVersion ?? file.publicVersion
        m.noPublicVersion = noPublicVersion ?? file.noPublicVersion
        m.hashAssets = hashAssets ?? file.hashAssets
        m.assets = assets ?? file.assets
        m.assetRoot = assetRoot ?? file.assetRoot
        m.rewrite = file.rewrite + rewrite
        m.keep = file.keep + keep
        m.sri = sri ?? file.sri
        m.maxFrontendSize = maxFrontendSize ?? file.maxFrontendSize
        m.lock = lock ?? file.lock
        m.locked = locked ?? file.locked
        m.tlsVerify = tlsVerify ?? file.tlsVerify
        m.certDir = certDir ?? file.certDir
        m.authfile = authfile ?? file.authfile
        m.chunkSize = chunkSize ?? file.chunkSize
        m.cacheDir = cacheDir ?? file.cacheDir
        m.noCache = noCache ?? file.noCache
        m.fsync = fsync ?? file.fsync
        m.creds = creds ?? file.creds
        return m
    }

    /// `${NAME}` and `${NAME:-default}` replaced; other `$` left as they are.
    static func expand(_ text: String, key: String, file: String, environment: [String: String]) throws -> String {
        guard text.contains("${") else { return text }
        var out = ""
        var rest = Substring(text)
        while let open = rest.range(of: "${") {
            out += rest[..<open.lowerBound]
            guard let close = rest[open.upperBound...].firstIndex(of: "}") else {
                throw StampError.usage("\(file): \"\(key)\": \"${\" without a closing \"}\"")
            }
            let inner = rest[open.upperBound..<close]
            let name: Substring, fallback: Substring?
            if let d = inner.range(of: ":-") {
                name = inner[..<d.lowerBound]
                fallback = inner[d.upperBound...]
            } else {
                name = inner
                fallback = nil
            }
            guard let f = name.first, f == "_" || f.isLetter,
                name.allSatisfy({ $0 == "_" || $0.isLetter || $0.isNumber }), name.allSatisfy(\.isASCII)
            else {
                throw StampError.usage("\(file): \"\(key)\": \"${\(inner)}\" does not name a variable")
            }
            if let v = environment[String(name)], !(v.isEmpty && fallback != nil) {
                out += v
            } else if let fallback {
                out += fallback
            } else {
                throw StampError.usage(
                    "\(file): \"\(key)\": ${\(name)} is not set (give it a value, or a default: ${\(name):-value})")
            }
            rest = rest[rest.index(after: close)...]
        }
        return out + rest
    }

    /// Whether `node` has at most `budget` values (mapping keys and values, sequence items).
    private static func fits(_ node: Node, _ budget: inout Int) -> Bool {
        budget -= 1
        guard budget >= 0 else { return false }
        switch node {
        case .mapping(let m):
            for (k, v) in m { guard fits(k, &budget), fits(v, &budget) else { return false } }
        case .sequence(let s):
            for v in s { guard fits(v, &budget) else { return false } }
        default: break
        }
        return true
    }

    /// Reads a `stamp.yaml`. Relative `add` sources are taken relative to the file's folder.
    /// `${NAME}` and `${NAME:-default}` in the values are taken from `environment` (a CI's
    /// variables); a variable that is unset, with no default, is an error, never an empty value.
    public static func load(file path: String, environment: [String: String] = ProcessInfo.processInfo.environment)
        throws -> StampSettings
    {
        let text: String
        do { text = String(decoding: try ReadableFile(path).readAll(limit: 1 << 20), as: UTF8.self) } catch {
            throw StampError.usage("--config: \(error)")
        }
        let node: Any?
        do {
            // Aliases let a few hundred bytes stand for billions of values: count what the
            // document means (stopping early) before building it.
            if let composed = try Yams.compose(yaml: text) {
                var budget = 10_000
                guard fits(composed, &budget) else {
                    throw StampError.usage(
                        "\(path): more than 10000 values once YAML aliases are expanded; a settings file needs no aliases"
                    )
                }
            }
            node = try Yams.load(yaml: text)
        } catch let e as StampError { throw e } catch {
            throw StampError.usage("\(path): not valid YAML: \(firstLine("\(error)"))")
        }
        guard let root = node as? [String: Any] else {
            if node == nil { return StampSettings() }
            throw StampError.usage("\(path): expected a mapping of settings at the top level")
        }
        var s = StampSettings()
        func scalar(_ k: String, _ v: Any) throws -> String {
            switch v {
            case let x as String: return try expand(x, key: k, file: path, environment: environment)
            case let x as Int: return String(x)
            case let x as Double: return String(x)
            case let x as Bool: return String(x)
            default: throw StampError.usage("\(path): \"\(k)\" must be a single value")
            }
        }
        func list(_ k: String, _ v: Any) throws -> [String] {
            if let a = v as? [Any] { return try a.map { try scalar(k, $0) } }
            if let m = v as? [String: Any] { return try m.keys.sorted().map { "\($0)=\(try scalar(k, m[$0]!))" } }
            return [try scalar(k, v)]
        }
        /// A path, relative paths taken from the settings file's folder.
        func filePath(_ k: String, _ v: Any) throws -> String {
            let p = try scalar(k, v)
            return p.hasPrefix("/") ? p : "\(Path.dirname(path))/\(p)"
        }
        func int(_ k: String, _ v: Any) throws -> Int {
            guard let n = Int(try scalar(k, v)) else {
                throw StampError.usage("\(path): \"\(k)\" must be a whole number")
            }
            return n
        }
        func bool(_ k: String, _ v: Any) throws -> Bool {
            switch try scalar(k, v) {
            case "true", "yes", "on": return true
            case "false", "no", "off": return false
            default: throw StampError.usage("\(path): \"\(k)\" must be true or false")
            }
        }
        let dir = Path.dirname(path)
        for key in root.keys.sorted() {
            let v = root[key]!
            switch key {
            case "base": s.base = try scalar(key, v)
            case "output": s.output = try scalar(key, v)
            case "version": s.version = try scalar(key, v)
            case "revision": s.revision = try scalar(key, v)
            case "source": s.source = try scalar(key, v)
            case "created": s.created = try scalar(key, v)
            case "label", "labels": s.labels = try list(key, v)
            case "annotation", "annotations": s.annotations = try list(key, v)
            case "env": s.env = try list(key, v)
            case "add":
                s.add = try list(key, v).map { spec in
                    guard let c = spec.firstIndex(of: ":"), !spec.hasPrefix("/") else { return spec }
                    return "\(dir)/\(spec[..<c]):\(spec[spec.index(after: c)...])"
                }
            case "tag", "tags": s.tags = try list(key, v)
            case "platform", "platforms": s.platforms = try list(key, v)
            case "profile": s.profile = try scalar(key, v)
            case "version-file": s.versionFile = try scalar(key, v)
            case "version-json": s.versionJSON = try scalar(key, v)
            case "base-name": s.baseName = try scalar(key, v)
            case "compression": s.compression = try scalar(key, v)
            case "compression-level": s.compressionLevel = try int(key, v)
            case "format": s.format = try scalar(key, v)
            case "health-script": s.healthScript = try scalar(key, v)
            case "health-port": s.healthPort = try int(key, v)
            case "health-path": s.healthPath = try scalar(key, v)
            case "health-interval": s.healthInterval = try scalar(key, v)
            case "health-timeout": s.healthTimeout = try scalar(key, v)
            case "health-start-period": s.healthStartPeriod = try scalar(key, v)
            case "health-retries": s.healthRetries = try int(key, v)
            case "no-healthcheck": s.noHealthcheck = try bool(key, v)
            case "allow-missing-client": s.allowMissingClient = try bool(key, v)
            case "public-version": s.publicVersion = try scalar(key, v)
            case "no-public-version": s.noPublicVersion = try bool(key, v)
            case "hash-assets": s.hashAssets = try bool(key, v)
            case "assets": s.assets = try filePath(key, v)
            case "asset-root": s.assetRoot = try scalar(key, v)
            case "rewrite": s.rewrite = try list(key, v)
            case "keep": s.keep = try list(key, v)
            case "sri": s.sri = try bool(key, v)
            case "max-frontend-size": s.maxFrontendSize = try scalar(key, v)
            case "lock": s.lock = try filePath(key, v)
            case "locked": s.locked = try bool(key, v)
            case "tls-verify": s.tlsVerify = try bool(key, v)
            case "cert-dir": s.certDir = try scalar(key, v)
            case "authfile": s.authfile = try scalar(key, v)
            case "chunk-size": s.chunkSize = try int(key, v)
            case "cache-dir": s.cacheDir = try filePath(key, v)
            case "no-cache": s.noCache = try bool(key, v)
            case "fsync": s.fsync = try bool(key, v)
            case "creds":
                throw StampError.usage(
                    "\(path): \"creds\" does not belong in a settings file; use --creds, a docker config or REGISTRY_AUTH_FILE"
                )
            default:
                throw StampError.usage("\(path): unknown key \"\(key)\" (known: \(keys.joined(separator: ", ")))")
            }
        }
        return s
    }
}

func firstLine(_ s: String) -> String { String(s.split(separator: "\n").first ?? "") }
