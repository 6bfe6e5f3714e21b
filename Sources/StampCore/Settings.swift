import Foundation
import IO
import Layers
import OCI
import Yams

/// Every setting of `stamp build`, as flags give them or a `stamp.yaml` holds them. Keys of the
/// file are the flag names without dashes (`version`, `base-name`, `label`, ...). Flags override
/// the file: `merged(over:)`.
public struct StampSettings: Sendable, Equatable, Codable {
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

    // MARK: Keys

    /// A setting's key in a settings file: its field's name in kebab-case (`baseName` is
    /// `base-name`), a list in the singular, as its flag is named (`labels` is `label`). There is
    /// no other list of keys: a new field is a new key.
    static func key(of field: String) -> String {
        if let k = singular[field] { return k }
        var out = ""
        for c in field.replacingOccurrences(of: "JSON", with: "Json") {
            if c.isUppercase { out += "-" + c.lowercased() } else { out.append(c) }
        }
        return out
    }
    private static let singular = [
        "labels": "label", "annotations": "annotation", "tags": "tag", "platforms": "platform",
    ]
    /// Fields that only flags set: secrets have no key in a settings file.
    private static let flagOnly: Set<String> = ["creds"]

    /// The fields, by name, with the kind of value each holds.
    private static let fields: [(name: String, kind: Kind)] = Mirror(reflecting: StampSettings()).children.compactMap {
        c in
        guard let name = c.label, !flagOnly.contains(name) else { return nil }
        // By the declared type: a nil of any optional type casts to every other one.
        let t = type(of: c.value)
        if t == [String].self { return (name, .list) }
        if t == Int?.self { return (name, .int) }
        if t == Bool?.self { return (name, .bool) }
        return (name, .text)
    }
    private enum Kind { case text, int, bool, list }

    /// Every key a settings file may have.
    public static let keys: [String] = fields.map { key(of: $0.name) }

    /// Lists that a flag replaces instead of adding to (one set of tags, of platforms).
    private static let replacedLists: Set<String> = ["tags", "platforms"]

    /// `self` (flags) over `file`: scalars from flags win; lists are the file's then the flags'
    /// (later `KEY=` entries win over earlier ones), but for `tags` and `platforms`, which flags
    /// replace. Field by field through their encoded form, so a new field needs no code here.
    public func merged(over file: StampSettings) -> StampSettings {
        func fieldsOf(_ s: StampSettings) -> [String: Any] {
            (try? JSONSerialization.jsonObject(with: JSONEncoder().encode(s))) as? [String: Any] ?? [:]
        }
        let mine = fieldsOf(self)
        var m = fieldsOf(file)
        for (name, value) in mine {
            if let list = value as? [Any] {
                let theirs = m[name] as? [Any] ?? []
                m[name] = Self.replacedLists.contains(name) ? (list.isEmpty ? theirs : list) : theirs + list
            } else {
                m[name] = value
            }
        }
        guard let data = try? JSONSerialization.data(withJSONObject: m),
            let merged = try? JSONDecoder().decode(StampSettings.self, from: data)
        else { preconditionFailure("settings that encode decode") }
        return merged
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

    /// Reads a `stamp.yaml`. Relative `add`, `assets`, `lock` and `cache-dir` paths are taken
    /// relative to the file's folder. `${NAME}` and `${NAME:-default}` in the values are taken
    /// from `environment` (a CI's variables); a variable that is unset, with no default, is an
    /// error, never an empty value. The document is checked and put in the shape the fields
    /// have (a list from a mapping or a single value, `KEY: VALUE` as `KEY=VALUE`), then decoded
    /// with Yams' `YAMLDecoder`; scalars keep their text (`version: 1.10` is "1.10").
    public static func load(file path: String, environment: [String: String] = ProcessInfo.processInfo.environment)
        throws -> StampSettings
    {
        let text: String
        do { text = String(decoding: try ReadableFile(path).readAll(limit: 1 << 20), as: UTF8.self) } catch {
            throw StampError.usage("--config: \(error)")
        }
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            throw StampError.usage("\(path): not valid YAML: \(firstLine("\(error)"))")
        }
        guard let root else { return StampSettings() }
        // Aliases let a few hundred bytes stand for billions of values: count what the document
        // means (stopping early) before anything walks it.
        var budget = 10_000
        guard fits(root, &budget) else {
            throw StampError.usage(
                "\(path): more than 10000 values once YAML aliases are expanded; a settings file needs no aliases")
        }
        guard case .mapping(let mapping) = root else {
            if case .scalar(let s) = root, ["", "~", "null", "Null", "NULL"].contains(s.string) {
                return StampSettings()
            }
            throw StampError.usage("\(path): expected a mapping of settings at the top level")
        }
        func scalar(_ k: String, _ v: Node) throws -> String {
            guard case .scalar(let s) = v else { throw StampError.usage("\(path): \"\(k)\" must be a single value") }
            return try expand(s.string, key: k, file: path, environment: environment)
        }
        var shaped: [(Node, Node)] = []
        for (keyNode, value) in mapping {
            let k = keyNode.scalar?.string ?? ""
            if k == "creds" {
                throw StampError.usage(
                    "\(path): \"creds\" does not belong in a settings file; use --creds, a docker config or "
                        + "REGISTRY_AUTH_FILE"
                )
            }
            guard let field = fields.first(where: { key(of: $0.name) == k || $0.name == k && singular[k] != nil })
            else {
                throw StampError.usage("\(path): unknown key \"\(k)\" (known: \(keys.joined(separator: ", ")))")
            }
            let out: Node
            switch field.kind {
            case .text:
                out = Node(try scalar(k, value), Tag(.str))
            case .int:
                let t = try scalar(k, value)
                guard Int(t) != nil else { throw StampError.usage("\(path): \"\(k)\" must be a whole number") }
                out = Node(t, Tag(.int))
            case .bool:
                switch try scalar(k, value) {
                case "true", "yes", "on": out = Node("true", Tag(.bool))
                case "false", "no", "off": out = Node("false", Tag(.bool))
                default: throw StampError.usage("\(path): \"\(k)\" must be true or false")
                }
            case .list:
                var items: [String]
                switch value {
                case .sequence(let seq): items = try seq.map { try scalar(k, $0) }
                case .mapping(let m):
                    items = try m.map { (try scalar(k, $0.key), try scalar(k, $0.value)) }.sorted { $0.0 < $1.0 }
                        .map { "\($0.0)=\($0.1)" }
                default: items = [try scalar(k, value)]
                }
                out = Node(items.map { Node($0, Tag(.str)) })
            }
            shaped.append((Node(field.name), out))
        }
        // Decodable reads a missing list as an error, not as its default: the file's absent
        // lists are empty ones.
        let given = Set(shaped.compactMap { $0.0.scalar?.string })
        for f in fields where f.kind == .list && !given.contains(f.name) {
            shaped.append((Node(f.name), Node([Node]())))
        }
        var s: StampSettings
        do { s = try YAMLDecoder().decode(StampSettings.self, from: Node(shaped)) } catch {
            throw StampError.usage("\(path): \(firstLine("\(error)"))")
        }
        let dir = Path.dirname(path)
        func fromHere(_ p: String) -> String { p.hasPrefix("/") ? p : "\(dir)/\(p)" }
        s.assets = s.assets.map(fromHere)
        s.lock = s.lock.map(fromHere)
        s.cacheDir = s.cacheDir.map(fromHere)
        s.add = s.add.map { spec in
            guard let c = spec.firstIndex(of: ":"), !spec.hasPrefix("/") else { return spec }
            return "\(dir)/\(spec[..<c]):\(spec[spec.index(after: c)...])"
        }
        return s
    }
}

func firstLine(_ s: String) -> String { String(s.split(separator: "\n").first ?? "") }
