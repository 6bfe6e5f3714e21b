import Foundation
import IO
import Layers
import OCI
import Registry
import Templates

/// `stamp dockerfile`: a Dockerfile and a build context that give the same stamp as `stamp
/// build` — the same files (byte for byte), labels, env and Healthcheck — for teams that build
/// with BuildKit or buildah.
public enum DockerfileRenderer {
    public struct Result: Sendable {
        public var folder: String
        public var dockerfile: String
        public var files: [String]
        public var pinned: Bool
    }

    /// `base` is the text of `--base`: a local image or a `docker://` reference (then it is read,
    /// and pinned by its digest), or a plain registry name such as
    /// `docker.io/mintplexlabs/anything-llm:1.16.0[@sha256:...]`, used as it is (offline).
    public static func render(
        _ plan: StampPlan, base: String, baseDigest: String?, template: String?, output: String,
        diagnostics: Diagnostics = .stderr
    ) throws -> Result {
        var name = base
        // What base.name records: what `stamp build` records for the same base (nil for a base
        // that names itself only by a tag), while FROM needs a repository either way.
        var recordedName: String?
        var digest = baseDigest ?? ""
        var image: PlatformImage?
        var store: BlobStore?
        if plan.base.registry != nil || Path.exists(plan.base.path) {
            // A local image is read; so is a docker:// one (the tag resolved and pinned now).
            let loaded = try ImageReader.open(plan.base, registry: RegistryClient(options: plan.registry))
            var images = loaded.images
            if !plan.platforms.isEmpty {
                images = images.filter { i in plan.platforms.contains { i.platform.matches($0) } }
            }
            guard let first = images.first else { throw StampError.usage("--platform: the base has no such platform") }
            image = first
            store = loaded.store
            if digest.isEmpty { digest = loaded.digest }
            // FROM needs a repository: a base that names itself only by a tag is taken to be
            // the profile's image (anything-llm's), which the Dockerfile then pins by digest.
            recordedName = Stamper.resolveBaseName(plan, loaded)
            name =
                recordedName
                ?? loaded.sourceName.flatMap { n in n.contains(":") ? n : plan.profile.imageName.map { $0 + ":" + n } }
                ?? plan.profile.imageName ?? "base"
        } else {
            if let at = base.range(of: "@sha256:") {
                if digest.isEmpty { digest = String(base[base.index(after: at.lowerBound)...]) }
                name = String(base[..<at.lowerBound])
            }
            name = plan.baseName ?? name
            recordedName = name
        }
        if !digest.isEmpty, !Digest.isValid(digest) {
            throw StampError.usage("--base-digest: \"\(digest)\" is not sha256:<64 hex>")
        }
        let pinned = !digest.isEmpty
        if !pinned {
            diagnostics.notice(
                "warning: the base cannot be pinned: \(base) is not a local image and no --base-digest was given; the "
                    + "Dockerfile builds from whatever the tag points to"
            )
        }
        // The name lands in ARG and FROM: BuildKit splits ARG on any Unicode space, so a name that
        // is not an image reference could drop the digest pin. Only the reference grammar passes.
        do {
            let r = try RegistryReference.parse(name)
            guard r.digest == nil else { throw OCIError.invalidReference("a digest belongs in --base-digest") }
        } catch {
            throw StampError.badInput(
                "the base's name \(String(reflecting: name)) is not an image reference (HOST/REPO[:TAG]): \(error); "
                    + "name it with --base-name"
            )
        }
        // stamp build names the base by its tag; the Dockerfile pins it by digest too.
        let baseImage = name + (pinned ? "@" + digest : "")

        var entries = try Stamper.stampEntries(
            plan, baseName: recordedName, baseDigest: digest, image: image, store: store, diagnostics: diagnostics)
        let hidden = entries.filter { Path.basename($0.path).hasPrefix(".wh.") }.count
        entries.removeAll { Path.basename($0.path).hasPrefix(".wh.") }

        // The context: every file under stamp/ at its image path, with its mode.
        let fm = FileManager.default
        if fm.fileExists(atPath: output) {
            guard Path.isDirectory(output), (try fm.contentsOfDirectory(atPath: output)).isEmpty else {
                throw StampError.output("\(output): exists and is not an empty folder")
            }
        }
        guard Path.isDirectory(Path.dirname(output)) else {
            throw StampError.output("\(output): folder \(Path.dirname(output)) does not exist")
        }
        let tmp: String
        do { tmp = try Path.makeTemporaryDirectory(beside: output) } catch { throw StampError.output("\(error)") }
        defer {
            try? fm.removeItem(atPath: tmp)
            TemporaryFolders.done(tmp)
        }
        var written: [String] = []
        var copies: [[String: TemplateValue]] = []
        let assetRoot = plan.assets.map { Path.clean($0.root)! }
        var copiedRoot = false
        for e in entries {
            let dest = tmp + "/stamp/" + e.path
            try fm.createDirectory(atPath: Path.dirname(dest), withIntermediateDirectories: true)
            switch e.content {
            case .bytes(let b): try Data(b).write(to: URL(fileURLWithPath: dest))
            case .file(let src): try fm.copyItem(atPath: src, toPath: dest)
            case .part(let o):
                let out = try WritableFile(path: dest)
                try copyPart(o, to: out)
                try out.finish()
                out.keep()
            case .directory: try fm.createDirectory(atPath: dest, withIntermediateDirectories: true)
            case .symlink(let t): try fm.createSymbolicLink(atPath: dest, withDestinationPath: t)
            }
            if case .symlink = e.content {} else { chmod(dest, mode_t(e.mode)) }
            written.append("stamp/" + e.path)
            // The frontend goes in with one COPY of its folder; every other file on its own.
            if let root = assetRoot, e.path.hasPrefix(root + "/") {
                if !copiedRoot {
                    copiedRoot = true
                    copies.append([
                        "chmod": .text(""), "paths": .text(try Quote.dockerfileArray(["stamp/\(root)/", "/\(root)/"])),
                    ])
                }
                continue
            }
            if case .directory = e.content { continue }
            let chmod = e.mode == 0o777 ? "" : "--chmod=" + String(format: "%04o", e.mode) + " "
            copies.append([
                "chmod": .text(chmod), "paths": .text(try Quote.dockerfileArray(["stamp/" + e.path, "/" + e.path])),
            ])
        }

        let stamp = Stamp(plan: plan, baseName: recordedName, baseDigest: digest)
        var labels: [[String: TemplateValue]] = []
        for (k, v) in stamp.labels {
            labels.append(["key": .text(try Quote.dockerfile(k)), "value": .text(try Quote.dockerfile(v))])
        }
        var env: [[String: TemplateValue]] = []
        for (k, v) in stamp.env {
            guard k.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
                throw StampError.usage("--env: \(k) cannot be a Dockerfile ENV name")
            }
            env.append(["key": .text(k), "value": .text(try Quote.dockerfile(v))])
        }
        var context: [String: TemplateValue] = [
            "stamp_version": .text(StampVersion.current),
            "base_image": .text(baseImage),
            "pinned": .flag(pinned),
            "labels": .list(labels),
            "env": .list(env),
            "copies": .list(copies),
            "hidden": hidden > 0 ? .text(String(hidden)) : .flag(false),
            "healthcheck": .flag(stamp.healthcheck != nil),
            "health_options": .text(""), "health_cmd": .text(""),
        ]
        if let h = stamp.healthcheck {
            context["health_options"] = .text(
                "--interval=\(duration(h.interval)) --timeout=\(duration(h.timeout)) "
                    + "--start-period=\(duration(h.startPeriod)) --retries=\(h.retries)"
            )
            context["health_cmd"] = .text(try Quote.dockerfileArray([h.scriptPath]))
        }
        if baseImage.contains(where: { $0 == " " || $0 == "\"" || $0 == "$" || $0.isNewline }) {
            throw StampError.usage("--base: \"\(baseImage)\" cannot be an image name in a Dockerfile")
        }
        let (templateName, templateText) = try loadTemplate(template, profile: plan.profile)
        let dockerfile: String
        do { dockerfile = try Template(templateText, name: templateName).render(context) } catch let e as TemplateError
        {
            throw StampError.usage("--template: \(e)")
        }
        try Data(dockerfile.utf8).write(to: URL(fileURLWithPath: tmp + "/Dockerfile"))
        try Data("# The build context holds only what the Dockerfile copies.\n*\n!stamp\n!stamp/**\n".utf8)
            .write(to: URL(fileURLWithPath: tmp + "/.dockerignore"))
        if fm.fileExists(atPath: output) { try fm.removeItem(atPath: output) }
        try fm.moveItem(atPath: tmp, toPath: output)
        return Result(folder: output, dockerfile: dockerfile, files: written, pinned: pinned)
    }

    /// `--template`: a file path, or a built-in name. Without `--template`, the profile's
    /// built-in template, whatever files the working folder holds (a `dockerfiles/` folder there
    /// is not a template source: it could add a RUN step nobody asked for).
    static func loadTemplate(_ t: String?, profile: Profile) throws -> (String, String) {
        let name = t ?? profile.name
        if t != nil, Path.exists(name), !Path.isDirectory(name) {
            return (name, String(decoding: try ReadableFile(name).readAll(limit: 1 << 20), as: UTF8.self))
        }
        if let builtin = BuiltinTemplates.all[name] { return ("dockerfiles/\(name).Dockerfile", builtin) }
        throw StampError.usage(
            "--template: no file \(name) and no template named \(name) (built in: "
                + "\(BuiltinTemplates.all.keys.sorted().joined(separator: ", ")))"
        )
    }

    /// Nanoseconds as Docker's duration flags take them (`30s`, `1m30s`).
    static func duration(_ ns: Int64) -> String {
        if ns % 1_000_000_000 != 0 { return "\(ns / 1_000_000)ms" }
        let s = ns / 1_000_000_000
        if s >= 60 && s % 60 == 0 { return "\(s / 60)m" }
        if s >= 60 { return "\(s / 60)m\(s % 60)s" }
        return "\(s)s"
    }
}
