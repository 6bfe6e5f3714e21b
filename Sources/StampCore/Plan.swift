import Foundation
import IO
import Layers
import OCI
import Registry
import Templates

/// What `stamp build` will do, resolved and validated from settings, profile and environment.
public struct StampPlan: Sendable {
    public struct AddSpec: Sendable, Equatable {
        public var source: String
        public var destination: String
    }

    public var base: ImageReference
    /// Where the image goes; nil for `stamp dockerfile`, which writes a build context instead.
    public var output: ImageReference?
    public var version: String
    public var revision: String?
    public var source: String?
    public var created: Timestamp
    public var labels: [(String, String)]
    /// Annotations without a level: the index and every manifest (stamp's default).
    public var annotations: [(String, String)]
    /// Annotations with a buildx level prefix (`index:`, `manifest[linux/amd64]:`, ...).
    public var leveledAnnotations: [LeveledAnnotation] = []
    public var env: [(String, String)]
    public var adds: [AddSpec]
    /// Names of the result: the first is the image's `ref.name`, each is a RepoTag.
    public var tags: [String]
    public var tag: String? { tags.first }
    public var platforms: [Platform]
    public var profile: Profile
    public var versionFile: String?
    public var versionJSON: String?
    public var baseName: String?
    public var compression: Compression
    public var compressionLevel: Int?
    /// nil: the base's format (a docker-archive output is always Docker's).
    public var format: ImageFormat?
    /// The enhanced health check, nil when off.
    public var health: HealthPlan?
    /// Where a copy of version.json is served from (the app's static folder), nil when off.
    public var publicVersionJSON: String?
    /// Content-hashed frontend assets, nil when off.
    public var assets: AssetPlan?
    /// How registries are reached (TLS, credentials, chunk size).
    public var registry: RegistryOptions
    /// `--lock FILE`: where the base's and the output's digests are recorded.
    public var lockFile: String?
    /// `--locked`: refuse to build when the base no longer has the digest the lock file names.
    public var locked: Bool
    /// Where what was read from base layers is kept for the next build (`ScanCache`); nil with
    /// `--no-cache` or when no folder can be named.
    public var scanCache: String?
    /// `--fsync`: an archive output is put on disk before it is renamed into place.
    public var fsync = false

    /// Keys stamp sets itself; users set them through `--version`, `--revision`, ... instead.
    public static let ownedKeys: Set<String> = [
        AnnotationKey.version, AnnotationKey.revision, AnnotationKey.created, AnnotationKey.source,
        AnnotationKey.baseName, AnnotationKey.baseDigest, AnnotationKey.stampVersionJSON,
    ]

    /// Resolves settings. `environment` supplies `SOURCE_DATE_EPOCH`, `GITHUB_SHA`, ... ;
    /// `gitRevision` is asked only when neither flag nor CI variable names a revision.
    /// `imageOutput`: the settings name an image to write (`--output`); false for a plan that
    /// writes no image (`stamp dockerfile`: there `output` stays nil).
    public static func resolve(
        _ s: StampSettings, environment: [String: String], imageOutput: Bool = true,
        gitRevision: () -> String? = StampPlan.gitHead, gitSource: () -> String? = StampPlan.gitSource,
        now: () -> Int64 = { Int64(Date().timeIntervalSince1970) }
    ) throws -> StampPlan {
        let exists: (String) -> Bool = { Path.exists($0) }
        guard let baseText = s.base, !baseText.isEmpty else {
            throw StampError.usage("missing --base (the image to stamp, e.g. oci-archive:anything-llm.tar)")
        }
        var output: ImageReference?
        if imageOutput {
            guard let outText = s.output, !outText.isEmpty else {
                throw StampError.usage("missing --output (e.g. oci-archive:stamped.tar)")
            }
            var o = try wrap { try ImageReference.parse(outText, exists: { _ in false }) }
            if case .path(let p, let r) = o {
                o = Path.isDirectory(p) ? .ociLayout(path: p, ref: r) : .ociArchive(path: p, ref: r)
            }
            output = o
        }
        guard let version = s.version, !version.isEmpty else {
            throw StampError.usage("missing --version (e.g. --version v2.1-canary)")
        }
        let base = try wrap { try ImageReference.parse(baseText, exists: exists) }
        try checkValue(version, "--version", max: 256)

        let profileName = s.profile ?? Profile.anythingLLM.name
        guard let profile = Profile.named(profileName) else {
            throw StampError.usage(
                "--profile: unknown profile \"\(profileName)\" (known: "
                    + "\(Profile.all.map(\.name).joined(separator: ", ")))"
            )
        }

        var revision = s.revision
        if revision == nil || revision == "" {
            revision = environment["GITHUB_SHA"].nonEmpty ?? environment["CI_COMMIT_SHA"].nonEmpty ?? gitRevision()
        }
        if let r = revision { try checkValue(r, "--revision", max: 256) }
        var source = s.source.nonEmpty
        if source == nil, let server = environment["GITHUB_SERVER_URL"].nonEmpty,
            let repo = environment["GITHUB_REPOSITORY"].nonEmpty
        {
            source = "\(server)/\(repo)"
        }
        if source == nil { source = environment["CI_PROJECT_URL"].nonEmpty }
        // A checkout without CI variables: its own remote, never the upstream image's source.
        if source == nil { source = gitSource() }
        if let v = source { try checkValue(v, "--source", max: 2048) }

        let created: Timestamp
        if let c = s.created.nonEmpty {
            guard let t = Timestamp.parse(c) else {
                throw StampError.usage(
                    "--created: \"\(c)\" is neither RFC 3339 (2025-04-05T10:00:00Z) nor seconds since 1970, within "
                        + "the years 1 to 9999"
                )
            }
            created = t
        } else if let e = environment["SOURCE_DATE_EPOCH"].nonEmpty {
            guard let n = Int64(e), n >= 0 else {
                throw StampError.usage("SOURCE_DATE_EPOCH: \"\(e)\" is not a number of seconds")
            }
            created = Timestamp(epoch: n)
        } else {
            created = Timestamp(epoch: now())
        }

        let labels = try pairs(s.labels, "--label", reserved: ownedKeys)
        var annotations: [(String, String)] = [], leveled: [LeveledAnnotation] = []
        for (k, v) in try pairs(s.annotations, "--annotation", reserved: []) {
            let a = try LeveledAnnotation.parse(k, v)
            if ownedKeys.union([AnnotationKey.refName]).contains(a.key) {
                throw StampError.usage(
                    "--annotation: \(a.key) is set by stamp itself (use --version, --revision, --created, --source or "
                        + "--base-name)"
                )
            }
            if a.level == nil { annotations.append((a.key, a.value)) } else { leveled.append(a) }
        }
        let env = try pairs(s.env, "--env", reserved: Stamp.Env.owned)
        for (k, _) in env where k.contains(where: { $0 == "=" || $0 == " " }) || k.isEmpty {
            throw StampError.usage("--env: \"\(k)\" is not a valid variable name")
        }

        var adds: [AddSpec] = []
        for a in s.add {
            guard let c = a.lastIndex(of: ":"), c != a.startIndex, a.index(after: c) != a.endIndex else {
                throw StampError.usage("--add: \"\(a)\" is not SRC:DEST")
            }
            let src = String(a[..<c]), dest = String(a[a.index(after: c)...])
            guard dest.hasPrefix("/") else {
                throw StampError.usage("--add: destination \"\(dest)\" must be an absolute path in the image")
            }
            guard Path.clean(dest) != nil else {
                throw StampError.usage("--add: destination \"\(dest)\" escapes the root")
            }
            guard Path.exists(src) else { throw StampError.usage("--add: \(src): no such file or directory") }
            adds.append(AddSpec(source: src, destination: dest))
        }

        var platforms: [Platform] = []
        // `all` (ko's, buildx's word) is what no --platform means: every platform of the base.
        for p in s.platforms.flatMap({ $0.split(separator: ",").map(String.init) }) where p != "all" {
            guard let pl = Platform.parse(p) else {
                throw StampError.usage("--platform: \"\(p)\" is not OS/ARCH[/VARIANT]")
            }
            platforms.append(pl)
        }

        let compression: Compression
        if let c = s.compression {
            guard let v = Compression(rawValue: c) else {
                throw StampError.usage("--compression: \"\(c)\" is not gzip, zstd or none")
            }
            compression = v
        } else {
            compression = .gzip
        }
        if let l = s.compressionLevel {
            let range = compression == .zstd ? 1...19 : 1...9
            guard range.contains(l) else {
                throw StampError.usage(
                    "--compression-level: \(l) is outside \(range.lowerBound)...\(range.upperBound) for "
                        + "\(compression.rawValue)"
                )
            }
        }

        var tags: [String] = []
        // `--tag a,b` is two tags (as ko reads it): a comma is in no valid tag.
        let given = s.tags.flatMap { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
        for t in given.isEmpty ? output?.ref.map { [$0] } ?? [] : given where !tags.contains(t) {
            try checkTag(t)
            tags.append(t)
        }
        if let r = output?.registry {
            // A registry would file an untagged push under `latest`: said, never assumed.
            if r.tag == nil, r.digest == nil, tags.isEmpty {
                throw StampError.usage(
                    "--output \(r) names no tag: add :TAG (or --tag TAG); :latest if latest is meant")
            }
            // Every tag goes to the output's repository.
            for t in tags where t.contains(":") || t.contains("/") {
                throw StampError.usage(
                    "--tag \(t): with a registry output (\(r)) a tag is a bare TAG, pushed to the same repository")
            }
        }

        let versionFile = s.versionFile.map { $0 == "" ? nil : $0 } ?? profile.versionFile
        let versionJSON = s.versionJSON.map { $0 == "" ? nil : $0 } ?? profile.versionJSON
        for (p, flag) in [(versionFile, "--version-file"), (versionJSON, "--version-json")] {
            if let p, !p.hasPrefix("/") || Path.clean(p) == nil || Path.clean(p) == "" {
                throw StampError.usage("\(flag): \"\(p)\" must be an absolute file path in the image")
            }
        }
        if let b = s.baseName { try checkValue(b, "--base-name", max: 512) }
        let health = try HealthPlan.resolve(s, profile: profile, versionJSON: versionJSON)
        var publicVersion: String?
        if s.noPublicVersion != true, versionJSON != nil {
            if let p = s.publicVersion.nonEmpty {
                publicVersion = p
            } else if s.publicVersion == nil, let root = profile.assetRoot {
                publicVersion = root + "/version.json"
            }
            if let p = publicVersion, !p.hasPrefix("/") || Path.clean(p) == nil || Path.clean(p) == "" {
                throw StampError.usage("--public-version: \"\(p)\" must be an absolute file path in the image")
            }
        }

        var assets: AssetPlan?
        if s.hashAssets == true || s.assets != nil {
            guard let root = s.assetRoot.nonEmpty ?? profile.assetRoot else {
                throw StampError.usage(
                    "--asset-root: the \(profile.name) profile has no frontend folder; name it (e.g. "
                        + "/usr/share/nginx/html)"
                )
            }
            guard root.hasPrefix("/"), let clean = Path.clean(root), !clean.isEmpty else {
                throw StampError.usage("--asset-root: \"\(root)\" must be an absolute folder in the image")
            }
            if let dir = s.assets, !Path.isDirectory(dir) { throw StampError.usage("--assets: \(dir): not a folder") }
            for r in s.rewrite where !r.hasPrefix("/") || Path.clean(r) == nil {
                throw StampError.usage("--rewrite: \"\(r)\" must be an absolute file path in the image")
            }
            assets = AssetPlan(
                root: "/" + clean, localFolder: s.assets, rewrite: profile.rewriteFiles + s.rewrite,
                required: Set(s.rewrite), keep: profile.assetKeep + s.keep, sri: s.sri ?? false)
            if let m = s.maxFrontendSize { assets?.maxBytes = try AssetPlan.size(m, "--max-frontend-size") }
        }

        var format: ImageFormat?
        if let f = s.format {
            guard let v = ImageFormat(rawValue: f) else {
                throw StampError.usage("--format: \"\(f)\" is not oci or docker")
            }
            format = v
        }
        if case .dockerArchive = output {
            if format == .oci {
                throw StampError.usage(
                    "--format oci: a docker-archive holds Docker-format images; write oci-archive:PATH or oci:DIR")
            }
            format = .docker
        }

        let locked = s.locked ?? false
        if locked && s.lock.nonEmpty == nil {
            throw StampError.usage("--locked needs --lock FILE (the lock file to check the base against)")
        }
        var plan = StampPlan(
            base: base, output: output, version: version, revision: revision, source: source, created: created,
            labels: labels, annotations: annotations, env: env, adds: adds, tags: tags, platforms: platforms,
            profile: profile, versionFile: versionFile, versionJSON: versionJSON, baseName: s.baseName.nonEmpty,
            compression: compression, compressionLevel: s.compressionLevel, format: format, health: health,
            publicVersionJSON: publicVersion, assets: assets,
            registry: try registryOptions(s, environment: environment), lockFile: s.lock.nonEmpty, locked: locked,
            scanCache: s.noCache == true
                ? nil : s.cacheDir.nonEmpty ?? ScanCache.defaultDirectory(environment: environment),
            fsync: s.fsync ?? false)
        plan.leveledAnnotations = leveled
        return plan
    }

    /// Registry access from settings and the environment (credential files, `$REGISTRY_AUTH_FILE`).
    public static func registryOptions(_ s: StampSettings, environment: [String: String]) throws -> RegistryOptions {
        var o = RegistryOptions(
            credentials: CredentialLookup(creds: s.creds, authFile: s.authfile.nonEmpty, environment: environment),
            environment: environment)
        o.tlsVerify = s.tlsVerify ?? true
        o.certDir = s.certDir.nonEmpty
        if let c = s.chunkSize {
            guard c >= 1 << 10 else { throw StampError.usage("--chunk-size: at least 1024 bytes") }
            o.chunkSize = Int64(c)
        }
        return o
    }

    /// The health-check script the settings describe, without a base or output (`stamp healthcheck`).
    public static func healthScript(_ s: StampSettings) throws -> String {
        let profileName = s.profile ?? Profile.anythingLLM.name
        guard let profile = Profile.named(profileName) else {
            throw StampError.usage("--profile: unknown profile \"\(profileName)\"")
        }
        let versionJSON = s.versionJSON.nonEmpty ?? profile.versionJSON ?? "/app/version.json"
        var hs = s
        hs.noHealthcheck = false
        if hs.healthScript == nil && profile.healthScript == nil {
            hs.healthScript = "/usr/local/bin/health-check-enhanced.sh"
        }
        guard let h = try HealthPlan.resolve(hs, profile: profile, versionJSON: versionJSON) else {
            throw StampError.usage("no health check to render")
        }
        return h.script(versionJSON: versionJSON).render()
    }

    private static func wrap<T>(_ f: () throws -> T) throws -> T {
        do { return try f() } catch let e as OCIError { throw StampError.usage(e.description) }
    }

    /// A value that goes into JSON, labels, shell and Dockerfiles: printable, one line.
    static func checkValue(_ v: String, _ what: String, max: Int) throws {
        guard v.utf8.count <= max else { throw StampError.usage("\(what): longer than \(max) bytes") }
        guard !v.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) else {
            throw StampError.usage(
                "\(what): contains a control character (newline, tab, ...); one printable line is required")
        }
    }

    static func checkTag(_ t: String) throws {
        let ok =
            !t.isEmpty && t.utf8.count <= 255
            && t.utf8.allSatisfy { b in
                (48...57).contains(b) || (65...90).contains(b) || (97...122).contains(b) || "._-:/".utf8.contains(b)
            }
        guard ok else { throw StampError.usage("--tag: \"\(t)\" is not a valid tag or NAME:TAG") }
    }

    static func pairs(_ items: [String], _ flag: String, reserved: Set<String>) throws -> [(String, String)] {
        var out: [(String, String)] = []
        for item in items {
            guard let eq = item.firstIndex(of: "="), eq != item.startIndex else {
                throw StampError.usage("\(flag): \"\(item)\" is not KEY=VALUE")
            }
            let k = String(item[..<eq]), v = String(item[item.index(after: eq)...])
            if reserved.contains(k) {
                throw StampError.usage(
                    "\(flag): \(k) is set by stamp itself (use --version, --revision, --created, --source or "
                        + "--base-name)"
                )
            }
            try checkValue(k, flag, max: 256)
            try checkValue(v, "\(flag) \(k)", max: 4096)
            out.removeAll { $0.0 == k }
            out.append((k, v))
        }
        return out
    }

    /// `git rev-parse HEAD` in the current directory, or nil.
    public static func gitHead() -> String? { git(["rev-parse", "--verify", "-q", "HEAD"]) }

    /// The web address of the current directory's `origin` remote, or nil (no remote, or a
    /// local path): `git@host:org/app.git` and `ssh://git@host/org/app.git` become
    /// `https://host/org/app`; credentials in an https URL are dropped.
    public static func gitSource() -> String? { git(["config", "--get", "remote.origin.url"]).flatMap(webAddress) }

    static func webAddress(_ remote: String) -> String? {
        var r = remote.trimmingCharacters(in: .whitespacesAndNewlines)
        if r.hasSuffix("/") { r.removeLast() }
        if r.hasSuffix(".git") { r.removeLast(4) }
        for scheme in ["https://", "http://", "ssh://", "git://"] where r.hasPrefix(scheme) {
            var rest = r.dropFirst(scheme.count)
            if let at = rest.firstIndex(of: "@"), rest[..<at].firstIndex(of: "/") == nil {
                rest = rest[rest.index(after: at)...]
            }
            // ssh://host:22/org/app: the port is ssh's, not the web server's.
            if scheme == "ssh://", let colon = rest.firstIndex(of: ":"), let slash = rest.firstIndex(of: "/"),
                colon < slash
            {
                rest = rest[..<colon] + rest[slash...]
            }
            guard let slash = rest.firstIndex(of: "/"), slash != rest.startIndex else { return nil }
            return (scheme == "http://" ? "http://" : "https://") + rest
        }
        // scp-like: [user@]host:org/app
        guard !r.hasPrefix("/"), !r.hasPrefix("."), let colon = r.firstIndex(of: ":") else { return nil }
        var host = r[..<colon]
        if let at = host.firstIndex(of: "@") { host = host[host.index(after: at)...] }
        let path = r[r.index(after: colon)...]
        guard !host.isEmpty, !host.contains("/"), !path.isEmpty, !path.hasPrefix("/") else { return nil }
        return "https://\(host)/\(path)"
    }

    private static func git(_ args: [String]) -> String? {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["git"] + args
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = FileHandle.nullDevice
        do { try p.run() } catch { return nil }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { return nil }
        let s = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return s.isEmpty ? nil : s
    }
}

extension Optional where Wrapped == String {
    var nonEmpty: String? { (self?.isEmpty ?? true) ? nil : self }
}

/// The health check of a build: where the script goes, what it probes, the Healthcheck timings.
public struct HealthPlan: Sendable, Equatable {
    public var scriptPath: String
    public var port: Int
    public var path: String
    public var envFile: String?
    /// Nanoseconds, as Docker's Healthcheck keeps them.
    public var interval: Int64
    public var timeout: Int64
    public var startPeriod: Int64
    public var retries: Int
    public var allowMissingClient: Bool
    public var serviceID: String?

    static let defaultInterval: Int64 = 30_000_000_000
    static let defaultTimeout: Int64 = 10_000_000_000
    static let defaultStartPeriod: Int64 = 60_000_000_000

    /// Seconds the script itself allows the probe: under the Healthcheck timeout, so the script
    /// still prints its JSON line before Docker gives up on it.
    public var probeTimeoutSeconds: Int { max(1, Int(timeout / 1_000_000_000) - 2) }

    /// The script for this plan, reading version.json at `versionJSON`.
    public func script(versionJSON: String) -> HealthCheckScript {
        HealthCheckScript(
            versionJSON: versionJSON, envFile: envFile, port: port, path: path, timeout: probeTimeoutSeconds,
            serviceID: serviceID, stampVersion: StampVersion.current)
    }

    /// The config `Healthcheck` object.
    public var json: JSONValue {
        .object([
            ("Test", .array([.string("CMD"), .string(scriptPath)])), ("Interval", JSONValue(interval)),
            ("Timeout", JSONValue(timeout)), ("StartPeriod", JSONValue(startPeriod)),
            ("Retries", JSONValue(Int64(retries))),
        ])
    }

    static func resolve(_ s: StampSettings, profile: Profile, versionJSON: String?) throws -> HealthPlan? {
        if s.noHealthcheck == true { return nil }
        guard let script = s.healthScript.map({ $0.isEmpty ? nil : $0 }) ?? profile.healthScript else { return nil }
        guard script.hasPrefix("/"), let clean = Path.clean(script), !clean.isEmpty else {
            throw StampError.usage("--health-script: \"\(script)\" must be an absolute file path in the image")
        }
        guard versionJSON != nil else {
            throw StampError.usage("the health check reads version.json: set --version-json or pass --no-healthcheck")
        }
        guard let port = s.healthPort ?? profile.port else {
            throw StampError.usage("--health-port: the \(profile.name) profile has no default port")
        }
        guard (1...65535).contains(port) else { throw StampError.usage("--health-port: \(port) is not a TCP port") }
        guard let path = s.healthPath ?? profile.healthPath else {
            throw StampError.usage("--health-path: the \(profile.name) profile has no default (e.g. /healthz)")
        }
        guard path.hasPrefix("/") else { throw StampError.usage("--health-path: \"\(path)\" must start with /") }
        try StampPlan.checkValue(path, "--health-path", max: 1024)
        let interval = try duration(s.healthInterval, "--health-interval") ?? defaultInterval
        let timeout = try duration(s.healthTimeout, "--health-timeout") ?? defaultTimeout
        let start = try duration(s.healthStartPeriod, "--health-start-period", zero: true) ?? defaultStartPeriod
        let retries = s.healthRetries ?? 3
        guard retries >= 0 else { throw StampError.usage("--health-retries: must be 0 or more") }
        guard timeout >= 1_000_000_000 else { throw StampError.usage("--health-timeout: at least 1s") }
        return HealthPlan(
            scriptPath: script, port: port, path: path, envFile: profile.envFile, interval: interval, timeout: timeout,
            startPeriod: start, retries: retries, allowMissingClient: s.allowMissingClient ?? false,
            serviceID: profile.name == "generic" ? nil : profile.name)
    }

    /// Go-style durations as Docker takes them: `30s`, `1m30s`, `500ms`, `2h`; a bare number is
    /// seconds. Nanoseconds in an Int64 (about 292 years): a longer one is refused, never wrapped.
    /// `zero`: 0 is a value (a start period), not Docker's "inherit".
    public static func duration(_ text: String?, _ flag: String, zero: Bool = false) throws -> Int64? {
        guard let text, !text.isEmpty else { return nil }
        let bad = StampError.usage("\(flag): \"\(text)\" is not a duration like 30s, 1m30s or 500ms")
        func times(_ a: Int64, _ b: Int64) throws -> Int64 {
            let (v, o) = a.multipliedReportingOverflow(by: b)
            guard !o else { throw StampError.usage("\(flag): \"\(text)\" is too long a duration") }
            return v
        }
        if let n = Int64(text) {
            guard n > 0 || (zero && n == 0) else { throw bad }
            return try times(n, 1_000_000_000)
        }
        var total: Int64 = 0
        var number = ""
        var chars = Array(text)
        var i = 0
        let units: [(String, Int64)] = [
            ("ms", 1_000_000), ("h", 3_600_000_000_000), ("m", 60_000_000_000), ("s", 1_000_000_000),
        ]
        while i < chars.count {
            if chars[i].isNumber {
                number.append(chars[i])
                i += 1
                continue
            }
            guard let n = Int64(number),
                let unit = units.first(where: { u in
                    let us = Array(u.0)
                    return i + us.count <= chars.count && Array(chars[i..<i + us.count]) == us
                })
            else { throw bad }
            let (sum, o) = total.addingReportingOverflow(try times(n, unit.1))
            guard !o else { throw StampError.usage("\(flag): \"\(text)\" is too long a duration") }
            total = sum
            i += unit.0.count
            number = ""
        }
        guard number.isEmpty, total > 0 || (zero && total == 0) else { throw bad }
        chars.removeAll()
        return total
    }
}

/// The frontend to fingerprint in the image.
public struct AssetPlan: Sendable, Equatable {
    /// The folder the app serves (absolute).
    public var root: String
    /// A local build to use instead of the image's (`--assets DIR`).
    public var localFolder: String?
    /// Files outside the root whose references are rewritten (absolute).
    public var rewrite: [String]
    /// Those of `rewrite` the user named, which must exist.
    public var required: Set<String>
    public var keep: [String]
    public var sri: Bool
    /// Most bytes the image's frontend (and the server files rewritten) may hold once inflated.
    public var maxBytes: Int64 = AssetPlan.defaultMaxBytes
    public static let defaultMaxBytes: Int64 = 1 << 30

    /// `1G`, `512M`, `4096`: bytes.
    static func size(_ text: String, _ flag: String) throws -> Int64 {
        var digits = Substring(text)
        var unit: Int64 = 1
        switch text.last.map({ Character($0.uppercased()) }) {
        case "K":
            unit = 1 << 10
            digits = digits.dropLast()
        case "M":
            unit = 1 << 20
            digits = digits.dropLast()
        case "G":
            unit = 1 << 30
            digits = digits.dropLast()
        default: break
        }
        guard let n = Int64(digits), n > 0 else {
            throw StampError.usage("\(flag): \"\(text)\" is not a size like 1G, 512M or 4096")
        }
        let (v, o) = n.multipliedReportingOverflow(by: unit)
        guard !o, v <= Descriptor.maxSize else { throw StampError.usage("\(flag): \"\(text)\" is too large") }
        return v
    }
}

/// An annotation with docker buildx's level prefix: `index:`, `manifest:`,
/// `manifest[linux/amd64]:`, `index-descriptor:`, `manifest-descriptor:` (and
/// `manifest-descriptor[PLATFORM]:`); levels may be joined with commas (`index,manifest:`).
public struct LeveledAnnotation: Sendable, Equatable {
    public enum Level: String, Sendable, CaseIterable {
        case index, manifest, indexDescriptor = "index-descriptor", manifestDescriptor = "manifest-descriptor"
    }
    public var levels: [Level]
    /// For `manifest` and `manifest-descriptor`: only this platform's.
    public var platform: Platform?
    public var key: String
    public var value: String

    /// nil `levels`' first means no prefix.
    public var level: Level? { levels.first }

    /// `KEY` of `KEY=VALUE` with its prefix, if any. A `:` in the key that is not a known
    /// level is an error (buildx would refuse it too), not a key with a colon in it.
    static func parse(_ key: String, _ value: String) throws -> LeveledAnnotation {
        guard let colon = key.firstIndex(of: ":") else {
            return LeveledAnnotation(levels: [], platform: nil, key: key, value: value)
        }
        var prefix = String(key[..<colon])
        let rest = String(key[key.index(after: colon)...])
        var platform: Platform?
        if let open = prefix.firstIndex(of: "["), prefix.hasSuffix("]") {
            let text = String(prefix[prefix.index(after: open)..<prefix.index(before: prefix.endIndex)])
            guard let p = Platform.parse(text) else {
                throw StampError.usage("--annotation: \"\(text)\" in \(key) is not OS/ARCH[/VARIANT]")
            }
            platform = p
            prefix = String(prefix[..<open])
        }
        var levels: [Level] = []
        for name in prefix.split(separator: ",", omittingEmptySubsequences: false) {
            guard let l = Level(rawValue: String(name)) else {
                throw StampError.usage(
                    "--annotation: unknown level \"\(name)\" in \(key) (index, manifest, manifest[OS/ARCH], "
                        + "index-descriptor, manifest-descriptor)"
                )
            }
            levels.append(l)
        }
        if platform != nil, levels.contains(where: { $0 == .index || $0 == .indexDescriptor }) {
            throw StampError.usage("--annotation: \(key): a platform applies to manifest and manifest-descriptor only")
        }
        guard !rest.isEmpty else { throw StampError.usage("--annotation: \(key) has a level but no key") }
        return LeveledAnnotation(levels: levels, platform: platform, key: rest, value: value)
    }

    /// The pairs for `level`, for an image of `platform` where that matters.
    static func pairs(_ all: [LeveledAnnotation], _ level: Level, platform: Platform? = nil) -> [(String, String)] {
        all.filter { a in
            a.levels.contains(level) && (a.platform == nil || platform.map { $0.matches(a.platform!) } == true)
        }
        .map { ($0.key, $0.value) }
    }
}
