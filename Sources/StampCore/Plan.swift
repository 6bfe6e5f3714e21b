import Foundation
import Layers
import OCI

/// What `stamp build` will do, resolved and validated from settings, profile and environment.
public struct StampPlan: Sendable {
    public struct AddSpec: Sendable, Equatable { public var source: String; public var destination: String }

    public var base: ImageReference
    public var output: ImageReference
    public var version: String
    public var revision: String?
    public var source: String?
    public var created: Timestamp
    public var labels: [(String, String)]
    public var annotations: [(String, String)]
    public var env: [(String, String)]
    public var adds: [AddSpec]
    public var tag: String?
    public var platforms: [Platform]
    public var profile: Profile
    public var versionFile: String?
    public var versionJSON: String?
    public var baseName: String?
    public var compression: Compression
    public var compressionLevel: Int?

    /// Keys stamp sets itself; users set them through `--version`, `--revision`, ... instead.
    static let ownedKeys: Set<String> = [AnnotationKey.version, AnnotationKey.revision, AnnotationKey.created, AnnotationKey.source,
                                        AnnotationKey.baseName, AnnotationKey.baseDigest, AnnotationKey.stampVersionJSON]
    static let ownedEnv: Set<String> = ["IMAGE_VERSION", "IMAGE_REVISION", "IMAGE_CREATED"]

    /// Resolves settings. `environment` supplies `SOURCE_DATE_EPOCH`, `GITHUB_SHA`, ... ;
    /// `gitRevision` is asked only when neither flag nor CI variable names a revision.
    public static func resolve(_ s: StampSettings, environment: [String: String],
                               gitRevision: () -> String? = StampPlan.gitHead,
                               now: () -> Int64 = { Int64(Date().timeIntervalSince1970) }) throws -> StampPlan {
        let exists: (String) -> Bool = { Path.exists($0) }
        guard let baseText = s.base, !baseText.isEmpty else { throw StampError.usage("missing --base (the image to stamp, e.g. oci-archive:anything-llm.tar)") }
        guard let outText = s.output, !outText.isEmpty else { throw StampError.usage("missing --output (e.g. oci-archive:stamped.tar)") }
        guard let version = s.version, !version.isEmpty else { throw StampError.usage("missing --version (e.g. --version v2.1-canary)") }
        let base = try wrap { try ImageReference.parse(baseText, exists: exists) }
        var output = try wrap { try ImageReference.parse(outText, exists: { _ in false }) }
        if case .path(let p, let r) = output {
            output = Path.isDirectory(p) ? .ociLayout(path: p, ref: r) : .ociArchive(path: p, ref: r)
        }
        try checkValue(version, "--version", max: 256)

        let profileName = s.profile ?? Profile.anythingLLM.name
        guard let profile = Profile.named(profileName) else {
            throw StampError.usage("--profile: unknown profile \"\(profileName)\" (known: \(Profile.all.map(\.name).joined(separator: ", ")))")
        }

        var revision = s.revision
        if revision == nil || revision == "" {
            revision = environment["GITHUB_SHA"].nonEmpty ?? environment["CI_COMMIT_SHA"].nonEmpty ?? gitRevision()
        }
        if let r = revision { try checkValue(r, "--revision", max: 256) }
        var source = s.source.nonEmpty
        if source == nil, let server = environment["GITHUB_SERVER_URL"].nonEmpty, let repo = environment["GITHUB_REPOSITORY"].nonEmpty {
            source = "\(server)/\(repo)"
        }
        if source == nil { source = environment["CI_PROJECT_URL"].nonEmpty }
        if let v = source { try checkValue(v, "--source", max: 2048) }

        let created: Timestamp
        if let c = s.created.nonEmpty {
            guard let t = Timestamp.parse(c) else { throw StampError.usage("--created: \"\(c)\" is neither RFC 3339 (2025-04-05T10:00:00Z) nor seconds since 1970") }
            created = t
        } else if let e = environment["SOURCE_DATE_EPOCH"].nonEmpty {
            guard let n = Int64(e), n >= 0 else { throw StampError.usage("SOURCE_DATE_EPOCH: \"\(e)\" is not a number of seconds") }
            created = Timestamp(epoch: n)
        } else {
            created = Timestamp(epoch: now())
        }

        let labels = try pairs(s.labels, "--label", reserved: ownedKeys)
        let annotations = try pairs(s.annotations, "--annotation", reserved: ownedKeys.union([AnnotationKey.refName]))
        let env = try pairs(s.env, "--env", reserved: ownedEnv)
        for (k, _) in env where k.contains(where: { $0 == "=" || $0 == " " }) || k.isEmpty {
            throw StampError.usage("--env: \"\(k)\" is not a valid variable name")
        }

        var adds: [AddSpec] = []
        for a in s.add {
            guard let c = a.lastIndex(of: ":"), c != a.startIndex, a.index(after: c) != a.endIndex else {
                throw StampError.usage("--add: \"\(a)\" is not SRC:DEST")
            }
            let src = String(a[..<c]), dest = String(a[a.index(after: c)...])
            guard dest.hasPrefix("/") else { throw StampError.usage("--add: destination \"\(dest)\" must be an absolute path in the image") }
            guard Path.clean(dest) != nil else { throw StampError.usage("--add: destination \"\(dest)\" escapes the root") }
            guard Path.exists(src) else { throw StampError.usage("--add: \(src): no such file or directory") }
            adds.append(AddSpec(source: src, destination: dest))
        }

        var platforms: [Platform] = []
        for p in s.platforms.flatMap({ $0.split(separator: ",").map(String.init) }) {
            guard let pl = Platform.parse(p) else { throw StampError.usage("--platform: \"\(p)\" is not OS/ARCH[/VARIANT]") }
            platforms.append(pl)
        }

        let compression: Compression
        if let c = s.compression {
            guard let v = Compression(rawValue: c) else { throw StampError.usage("--compression: \"\(c)\" is not gzip, zstd or none") }
            compression = v
        } else { compression = .gzip }
        if let l = s.compressionLevel {
            let range = compression == .zstd ? 1...19 : 1...9
            guard range.contains(l) else { throw StampError.usage("--compression-level: \(l) is outside \(range.lowerBound)...\(range.upperBound) for \(compression.rawValue)") }
        }

        var tag = s.tag.nonEmpty ?? output.ref
        if let t = tag { try checkTag(t) } else { tag = nil }

        let versionFile = s.versionFile.map { $0 == "" ? nil : $0 } ?? profile.versionFile
        let versionJSON = s.versionJSON.map { $0 == "" ? nil : $0 } ?? profile.versionJSON
        for (p, flag) in [(versionFile, "--version-file"), (versionJSON, "--version-json")] {
            if let p, !p.hasPrefix("/") || Path.clean(p) == nil || Path.clean(p) == "" {
                throw StampError.usage("\(flag): \"\(p)\" must be an absolute file path in the image")
            }
        }
        if let b = s.baseName { try checkValue(b, "--base-name", max: 512) }

        return StampPlan(base: base, output: output, version: version, revision: revision, source: source, created: created,
                         labels: labels, annotations: annotations, env: env, adds: adds, tag: tag, platforms: platforms,
                         profile: profile, versionFile: versionFile, versionJSON: versionJSON, baseName: s.baseName.nonEmpty,
                         compression: compression, compressionLevel: s.compressionLevel)
    }

    private static func wrap<T>(_ f: () throws -> T) throws -> T {
        do { return try f() } catch let e as OCIError { throw StampError.usage(e.description) }
    }

    /// A value that goes into JSON, labels, shell and Dockerfiles: printable, one line.
    static func checkValue(_ v: String, _ what: String, max: Int) throws {
        guard v.utf8.count <= max else { throw StampError.usage("\(what): longer than \(max) bytes") }
        guard !v.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) else {
            throw StampError.usage("\(what): contains a control character (newline, tab, ...); one printable line is required")
        }
    }

    static func checkTag(_ t: String) throws {
        let ok = !t.isEmpty && t.utf8.count <= 255 && t.utf8.allSatisfy { b in
            (48...57).contains(b) || (65...90).contains(b) || (97...122).contains(b) || "._-:/".utf8.contains(b)
        }
        guard ok else { throw StampError.usage("--tag: \"\(t)\" is not a valid tag or NAME:TAG") }
    }

    static func pairs(_ items: [String], _ flag: String, reserved: Set<String>) throws -> [(String, String)] {
        var out: [(String, String)] = []
        for item in items {
            guard let eq = item.firstIndex(of: "="), eq != item.startIndex else { throw StampError.usage("\(flag): \"\(item)\" is not KEY=VALUE") }
            let k = String(item[..<eq]), v = String(item[item.index(after: eq)...])
            if reserved.contains(k) {
                throw StampError.usage("\(flag): \(k) is set by stamp itself (use --version, --revision, --created, --source or --base-name)")
            }
            try checkValue(k, flag, max: 256)
            try checkValue(v, "\(flag) \(k)", max: 4096)
            out.removeAll { $0.0 == k }
            out.append((k, v))
        }
        return out
    }

    /// `git rev-parse HEAD` in the current directory, or nil.
    public static func gitHead() -> String? {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["git", "rev-parse", "--verify", "-q", "HEAD"]
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
