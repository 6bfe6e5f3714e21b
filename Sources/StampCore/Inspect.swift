import Hashing
import IO
import Layers
import OCI
import Registry

/// A summary of an image for `stamp inspect`.
public enum Inspector {
    /// `platform`: only that platform's image (OS/ARCH[/VARIANT], as `Platform.matches` reads it).
    public static func inspect(_ reference: ImageReference, registry: RegistryOptions? = nil, platform: String? = nil)
        throws -> JSONValue
    {
        let image = try ImageReader.open(reference, registry: registry.map(RegistryClient.init(options:)))
        var platforms: [JSONValue] = []
        var stampDoc: JSONValue?
        for img in try select(image, platform) {
            let history = (img.config["history"]?.arrayValue ?? []).map { h -> JSONValue in
                var e: JSONValue = .object([])
                for k in ["created", "created_by", "comment", "empty_layer"] { if let v = h[k] { e[k] = v } }
                return e
            }
            let layers: [JSONValue] = img.layers.enumerated().map { i, l in
                var j: JSONValue = .object([
                    ("digest", .string(l.digest)), ("size", JSONValue(l.size)), ("mediaType", .string(l.mediaType)),
                ])
                if i < img.diffIDs.count { j["diffID"] = .string(img.diffIDs[i]) }
                return j
            }
            var p = PlatformEntry(img).json
            for (k, v) in [
                ("created", img.config["created"] ?? .null),
                ("labels", .strings(img.labels)),
                ("annotations", .strings(img.annotations)),
                ("env", img.config["config"]?["Env"] ?? .array([])),
                ("layers", .array(layers)),
                ("history", .array(history)),
                ("size", JSONValue(img.layers.sizeSum(\.size))),
            ] { p[k] = v }
            if let hc = img.config["config"]?["Healthcheck"] { p["healthcheck"] = hc }
            // How a runtime starts it: what `docker inspect` shows under Config.
            let run = img.config["config"]
            for (key, name) in [("Entrypoint", "entrypoint"), ("Cmd", "cmd")] {
                if let v = run?[key]?.arrayValue { p[name] = .array(v) }
            }
            if let u = run?["User"]?.stringValue, !u.isEmpty { p["user"] = .string(u) }
            if let w = run?["WorkingDir"]?.stringValue, !w.isEmpty { p["workingDir"] = .string(w) }
            if let ports = run?["ExposedPorts"]?.objectValue {
                p["exposedPorts"] = .array(ports.map(\.0).sorted().map { .string($0) })
            }
            platforms.append(p)
            if stampDoc == nil, let path = img.labels[AnnotationKey.stampVersionJSON], let top = img.layers.last,
                let files = try? StampReader.files(
                    in: top, store: image.store, budget: 0, wanted: [Path.clean(path) ?? ""]),
                let b = files[Path.clean(path) ?? ""]?.bytes
            {
                stampDoc = try? JSONValue.parse(b)
            }
            // A stamp of labels and env only (`--profile generic` without `--version-json`).
            if stampDoc == nil, Verifier.isLabelsOnlyStamp(img), let v = img.labels[AnnotationKey.version] {
                var doc: JSONValue = .object([("version", .string(v)), ("labelsOnly", .bool(true))])
                if let r = img.labels[AnnotationKey.revision] { doc["revision"] = .string(r) }
                if let c = img.labels[AnnotationKey.created] { doc["created"] = .string(c) }
                stampDoc = doc
            }
        }
        var j: JSONValue = .object([
            ("schemaVersion", JSONValue(Int64(OutputSchema.version))),
            ("reference", .string(reference.description)),
            ("transport", .string(image.kind)),
            ("digest", .string(image.digest)),
            ("mediaType", .string(image.top.mediaType)),
            ("platforms", .array(platforms)),
        ])
        if let n = image.sourceName { j["name"] = .string(n) }
        if let a = image.index?["annotations"] { j["annotations"] = a }
        if !image.attestations.isEmpty { j["attestations"] = JSONValue(Int64(image.attestations.count)) }
        if let stampDoc { j["stamp"] = stampDoc }
        return j
    }

    /// The images of `platform` (all without one); an error naming those there are when none is.
    static func select(_ image: LoadedImage, _ platform: String?) throws -> [PlatformImage] {
        guard let platform else { return image.images }
        guard let want = Platform.parse(platform) else {
            throw StampError.usage("--platform: \"\(platform)\" is not OS/ARCH[/VARIANT]")
        }
        let found = image.images.filter { $0.platform.matches(want) }
        guard !found.isEmpty else {
            throw StampError.badInput(
                "--platform: the image has no \(want) (it has \(image.images.map(\.platform.description).joined(separator: ", ")))"
            )
        }
        return found
    }

    /// What `inspect --raw` / `--config` print: the top document (index or manifest) as stored,
    /// or with `platform` that platform's manifest; with `config`, the config (of the one
    /// platform, or of `platform`). Bytes as they are, so their SHA-256 is the digest.
    public static func raw(
        _ reference: ImageReference, registry: RegistryOptions? = nil, platform: String?, config: Bool
    ) throws -> [UInt8] {
        let image = try ImageReader.open(reference, registry: registry.map(RegistryClient.init(options:)))
        if !config && platform == nil {
            return try stored(image, image.top) { JSONValue.encode(image.index ?? image.images[0].manifest) }
        }
        let images = try select(image, platform)
        guard images.count == 1 else {
            throw StampError.usage(
                "the image has \(images.count) platforms (\(images.map(\.platform.description).joined(separator: ", "))): "
                    + "choose one with --platform")
        }
        let img = images[0]
        return config
            ? try image.store.document(img.configDescriptor)
            : try stored(image, img.descriptor) { JSONValue.encode(img.manifest) }
    }

    /// A document's stored bytes; a `docker save` archive stores no manifest, so the one it
    /// implies (whose digest the image has) is written out.
    static func stored(_ image: LoadedImage, _ d: Descriptor, implied: () -> [UInt8]) throws -> [UInt8] {
        if let bytes = try? image.store.document(d) { return bytes }
        let made = implied()
        guard Digester.digest(made) == d.digest else { return try image.store.document(d) }
        return made
    }

    /// The human summary of `inspect`'s JSON.
    public static func render(_ j: JSONValue) -> String {
        var out: [String] = []
        func s(_ v: JSONValue?) -> String { v?.stringValue ?? (v.map { JSONValue.encodeString($0) } ?? "-") }
        out.append("Image     \(s(j["reference"]))  (\(s(j["transport"])))")
        if let n = j["name"] { out.append("Name      \(s(n))") }
        out.append("Digest    \(s(j["digest"]))")
        out.append("Type      \(s(j["mediaType"]))")
        if let a = j["attestations"] { out.append("Attest.   \(s(a)) attestation manifest(s)") }
        if let st = j["stamp"] {
            out.append(
                "Stamp     version \(s(st["version"]))  revision \(s(st["revision"]))  created \(s(st["created"]))")
            if let b = st["base"] { out.append("          base \(s(b["name"]))@\(s(b["digest"]))") }
        } else {
            out.append("Stamp     none")
        }
        for p in j["platforms"]?.arrayValue ?? [] {
            out.append("")
            out.append("Platform  \(s(p["platform"]))")
            out.append("  manifest  \(s(p["manifest"]))")
            out.append("  config    \(s(p["config"]))  created \(s(p["created"]))")
            let labels = p["labels"]?.objectValue ?? []
            if !labels.isEmpty {
                out.append("  labels")
                for (k, v) in labels.sorted(by: { $0.0 < $1.0 }) { out.append("    \(k)=\(s(v))") }
            }
            if let hc = p["healthcheck"] { out.append("  healthcheck \(healthcheck(hc))") }
            func words(_ v: JSONValue?) -> String? { v.map { JSONValue.encodeString($0) } }
            for (key, label) in [("entrypoint", "entrypoint"), ("cmd", "cmd       ")] {
                if let w = words(p[key]) { out.append("  \(label)  \(w)") }
            }
            var runAs: [String] = []
            if let u = p["user"]?.stringValue { runAs.append("user \(u)") }
            if let w = p["workingDir"]?.stringValue { runAs.append("workdir \(w)") }
            if let ports = p["exposedPorts"]?.arrayValue, !ports.isEmpty {
                runAs.append("ports " + ports.compactMap(\.stringValue).joined(separator: " "))
            }
            if !runAs.isEmpty { out.append("  runs as    " + runAs.joined(separator: "  ")) }
            let env = p["env"]?.arrayValue ?? []
            if !env.isEmpty {
                out.append("  env (\(env.count))")
                for e in env { out.append("    \(s(e))") }
            }
            let layers = p["layers"]?.arrayValue ?? []
            out.append("  layers (\(layers.count), \(human(p["size"]?.int64Value ?? 0)))")
            for (i, l) in layers.enumerated() {
                out.append(
                    "    \(i)  \(s(l["digest"]))  \(human(l["size"]?.int64Value ?? 0))  \(shortType(s(l["mediaType"])))"
                )
            }
            let history = p["history"]?.arrayValue ?? []
            if !history.isEmpty {
                out.append("  history (\(history.count))")
                for h in history {
                    let empty = h["empty_layer"]?.boolValue == true ? " (no layer)" : ""
                    var by = s(h["created_by"])
                    if by.count > 100 { by = String(by.prefix(97)) + "..." }
                    out.append("    \(s(h["created"]))  \(by)\(empty)")
                }
            }
        }
        return out.joined(separator: "\n")
    }

    /// A config's Healthcheck as a person reads it: the command, then durations as Docker's
    /// flags take them (`every 30s, timeout 10s, start period 1m, 3 retries`); `--json` keeps
    /// the config's nanoseconds.
    static func healthcheck(_ hc: JSONValue) -> String {
        let test = (hc["Test"]?.arrayValue ?? []).compactMap(\.stringValue)
        var text: String
        switch test.first {
        case "NONE": return "disabled (NONE)"
        case "CMD-SHELL": text = "CMD-SHELL " + test.dropFirst().joined(separator: " ")
        case "CMD": text = "CMD " + test.dropFirst().joined(separator: " ")
        default: text = test.isEmpty ? "inherited" : test.joined(separator: " ")
        }
        var parts: [String] = []
        for (key, what) in [
            ("Interval", "every"), ("Timeout", "timeout"), ("StartPeriod", "start period"),
            ("StartInterval", "start interval"),
        ] {
            if let ns = hc[key]?.int64Value, ns > 0 { parts.append("\(what) \(DockerfileRenderer.duration(ns))") }
        }
        if let r = hc["Retries"]?.int64Value, r > 0 { parts.append("\(r) retries") }
        return parts.isEmpty ? text : text + "  (" + parts.joined(separator: ", ") + ")"
    }

    static func shortType(_ t: String) -> String {
        if let c = MediaType.layerCompression(t) { return c == .none ? "tar" : "tar+\(c.rawValue)" }
        return t
    }
}

public func human(_ n: Int64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var v = Double(n), u = 0
    while v >= 1024 && u < units.count - 1 {
        v /= 1024
        u += 1
    }
    if u == 0 { return "\(n) B" }
    let r = (v * 10).rounded() / 10
    return "\(r) \(units[u])"
}
