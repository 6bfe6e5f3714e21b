import Assets
import Dispatch
import Foundation
import Failures
import Hashing
import IO
import Layers
import OCI
import Registry

/// What `stamp verify` found.
public struct VerifyReport: Sendable {
    public var reference: String
    public var findings: [Finding] = []
    public var blobsChecked = 0
    public var bytesChecked: Int64 = 0
    public var platforms: [PlatformEntry] = []
    public var stamp: StampFacts?
    /// Why the image could not be checked at all (no such file, registry unreachable): exit 2,
    /// not a finding.
    public var failure: String?

    public var ok: Bool { findings.isEmpty && failure == nil }

    /// The digest of what was verified: the index, or the manifest of a single-platform image.
    public var digest: String?

    public var json: JSONValue {
        var j: JSONValue = .object([
            ("schemaVersion", JSONValue(Int64(OutputSchema.version))),
            ("reference", .string(reference)), ("digest", digest.map { .string($0) } ?? .null), ("ok", .bool(ok)),
            ("findings", .array(findings.map(\.json))),
            ("blobsChecked", JSONValue(Int64(blobsChecked))), ("bytesChecked", JSONValue(bytesChecked)),
            ("error", failure.map { .string($0) } ?? .null),
            ("platforms", .array(platforms.map(\.json))),
        ])
        if let s = stamp { j["stamp"] = s.json }
        return j
    }
}

/// The stamp as the image carries it.
public struct StampFacts: Sendable {
    public var version: String?
    public var revision: String?
    public var created: String?
    /// Where version.json is; nil for a stamp of labels and env only (`--profile generic`
    /// without `--version-json`).
    public var versionJSONPath: String?
    public var versionFilePath: String?
    public var document: JSONValue?

    public var json: JSONValue {
        var j: JSONValue = .object([])
        if let p = versionJSONPath { j["versionJson"] = .string(p) }
        if let v = version { j["version"] = .string(v) }
        if let v = revision { j["revision"] = .string(v) }
        if let v = created { j["created"] = .string(v) }
        if let v = versionFilePath { j["versionFile"] = .string(v) }
        return j
    }
}

public enum Verifier {
    public struct Options: Sendable {
        /// Check blobs and documents only, not the stamp.
        public var integrityOnly = false
        /// How to reach a registry image.
        public var registry: RegistryOptions?
        /// Progress on stderr while layers are read (`tty`, `plain` or `quiet`).
        public var progress: ProgressMode
        public init(integrityOnly: Bool = false, registry: RegistryOptions? = nil, progress: ProgressMode = .quiet) {
            self.integrityOnly = integrityOnly
            self.registry = registry
            self.progress = progress
        }
    }

    public static func verify(_ reference: ImageReference, options: Options = .init()) -> VerifyReport {
        var report = VerifyReport(reference: reference.description)
        let image: LoadedImage
        if reference.registry == nil, !Path.exists(reference.path) {
            report.failure = "\(reference): no such file or directory"
            return report
        }
        do {
            image = try ImageReader.open(reference, registry: options.registry.map(RegistryClient.init(options:)))
        } catch {
            // A registry that cannot be reached (or refuses us) says nothing about the image.
            if [.network, .denied, .refused, .notFound].contains(ErrorKind.of(error, unknown: .badInput)),
                error is RegistryError
            {
                report.failure = "\(error)"
            } else {
                report.findings.append(Finding(.imageUnreadable, "\(error)"))
            }
            return report
        }
        report.platforms = image.images.map { PlatformEntry($0) }
        report.digest = image.top.digest
        // The stamp layer of each platform first: its version.json says whether the asset checks
        // need the frontend, and where it is, so that the pass below collects it on the way.
        var stampLayers: [String: Result<(files: [String: LayerFile], complete: Bool), Error>] = [:]
        // The folders each layer's files are collected under: the frontend's, unless the stamp
        // layer above hides what lower layers hold there (an opaque whiteout: a local build).
        var roots: [String: Set<String>] = [:]
        if !options.integrityOnly {
            for img in image.images {
                guard let jsonPath = img.labels[AnnotationKey.stampVersionJSON], let top = img.layers.last else {
                    continue
                }
                if stampLayers[top.digest] == nil {
                    stampLayers[top.digest] = Result {
                        try StampReader.files(
                            in: top, store: image.store, wanted: [Path.clean(jsonPath) ?? ""],
                            maxEntries: StampReader.listedEntries)
                    }
                }
                if case .success(let (files, _))? = stampLayers[top.digest],
                    let b = files[Path.clean(jsonPath) ?? ""]?.bytes,
                    let assets = (try? JSONValue.parse(b))?["assets"], let root = AssetStage.verifyRoot(assets)
                {
                    let hidden = files[root + "/.wh..wh..opq"] != nil
                    for (i, l) in img.layers.enumerated() {
                        roots[l.digest, default: []].formUnion(hidden && i < img.layers.count - 1 ? [] : [root])
                    }
                }
            }
        }
        // Every distinct layer once, decompressed on all cores; findings merged in a fixed order.
        var unique: [Descriptor] = []
        var seen = Set<String>()
        for img in image.images { for l in img.layers where seen.insert(l.digest).inserted { unique.append(l) } }
        let diagnostics = Diagnostics.stderr(progress: options.progress)
        let step = diagnostics.step("verifying \(unique.count) layers of \(reference)")
        let progress = diagnostics.progress("verifying layers", total: unique.sizeSum(\.size))
        let store = image.store, name = reference.description
        var partial = parallelMap(count: unique.count) {
            [roots, unique] i -> (VerifyReport, String?, MergedView.LayerChanges?) in
            var r = VerifyReport(reference: name)
            let want = roots[unique[i].digest]
            let start = Diagnostics.now()
            var (d, changes) = checkLayer(
                unique[i], index: i, store: store, report: &r, progress: progress, roots: want ?? [])
            diagnostics.blob(
                r.findings.isEmpty ? "checked" : "found \(r.findings.count) problem(s) in", digest: unique[i].digest,
                size: unique[i].size, seconds: Diagnostics.now() - start)
            // A layer whose frontend is hidden above adds nothing to it: read for its digests only.
            if let want, want.isEmpty, d != nil { changes = MergedView.LayerChanges() }
            return (r, d, changes)
        }
        progress.finish()
        step.done()
        var layerResults: [String: String?] = [:]  // digest -> diff_id (nil when unreadable)
        var layerChanges: [String: MergedView.LayerChanges] = [:]
        for (i, l) in unique.enumerated() {
            let (r, d, c) = partial[i]
            report.findings += r.findings
            report.blobsChecked += r.blobsChecked
            report.bytesChecked += r.bytesChecked
            layerResults[l.digest] = d
            layerChanges[l.digest] = c
        }
        // The changes now have one owner, which lets each go once it is applied.
        partial = []
        for img in image.images {
            let where_ = "\(img.platform) manifest \(Digest.short(img.descriptor.digest))",
                platform = img.platform.description
            let diffIDs = img.diffIDs
            if diffIDs.count != img.layers.count {
                report.findings.append(
                    Finding(
                        .configDiffIDCount,
                        "\(where_): \(img.layers.count) layers but \(diffIDs.count) rootfs.diff_ids in config "
                            + "\(Digest.short(img.configDescriptor.digest))",
                        platform: platform, digest: img.configDescriptor.digest, expected: "\(img.layers.count)",
                        found: "\(diffIDs.count)"))
            }
            if let history = img.config["history"]?.arrayValue {
                let nonEmpty = history.filter { $0["empty_layer"]?.boolValue != true }.count
                if nonEmpty != img.layers.count {
                    report.findings.append(
                        Finding(
                            .configHistoryCount,
                            "\(where_): history has \(nonEmpty) entries that make layers, the manifest has "
                                + "\(img.layers.count) layers",
                            platform: platform, digest: img.configDescriptor.digest, expected: "\(img.layers.count)",
                            found: "\(nonEmpty)"))
                }
            }
            for (i, l) in img.layers.enumerated() {
                if let found = layerResults[l.digest] ?? nil, i < diffIDs.count, found != diffIDs[i] {
                    report.findings.append(
                        Finding(
                            .layerDiffIDMismatch,
                            "\(where_): layer \(i) \(l.digest): diff_id mismatch: config says \(diffIDs[i]), content "
                                + "is \(found)",
                            platform: platform, digest: l.digest, expected: diffIDs[i], found: found))
                }
            }
        }
        report.blobsChecked += image.images.count * 2 + (image.index == nil ? 0 : 1)
        if !options.integrityOnly {
            report.stamp = checkStamp(
                image, stampLayers: stampLayers, layerChanges: consume layerChanges, report: &report)
        }
        return report
    }

    /// Reads a layer once: the compressed bytes are hashed (digest, size) while they are
    /// decompressed (diff_id). When the asset checks need files under `roots`, the tar is parsed
    /// in the same pass and the layer's changes under them are returned too (a zstd layer, which
    /// libarchive decompresses itself, is read a second time for them). Returns the diff_id, or
    /// nil when the layer cannot be read.
    static func checkLayer(
        _ l: Descriptor, index: Int = 0, store: BlobStore, report: inout VerifyReport, progress: ProgressLine = .off,
        roots: Set<String> = []
    ) -> (String?, MergedView.LayerChanges?) {
        let what = "layer \(l.digest)"
        let loc: BlobLocation
        do {
            guard let found = try store.locate(l) else {
                report.findings.append(
                    Finding(.blobMissing, "\(store.name): missing blob \(l.digest)", digest: l.digest))
                return (nil, nil)
            }
            loc = try found.resolved()
        } catch {
            report.findings.append(Finding(.blobUnreadable, "\(what): \(error)", digest: l.digest))
            return (nil, nil)
        }
        if loc.length != l.size {
            report.findings.append(
                Finding(
                    .blobSizeMismatch,
                    "\(what): size mismatch: descriptor says \(l.size) bytes, blob has \(loc.length)",
                    digest: l.digest, expected: "\(l.size)", found: "\(loc.length)"))
        }
        guard let opened = try? loc.open() else { return (nil, nil) }  // resolved above: a file section or memory
        let source = HashingSource(ObservedSource(opened, progress))
        let diff = DigestingSink(nil)
        var diffID: String?
        var changes: MergedView.LayerChanges?
        var failure: String?
        let inRoots: @Sendable (String) -> Bool = { p in roots.contains { p.hasPrefix($0 + "/") } }
        var layerReader: LayerReader?
        // Entries are read (and held to build's rules: no `..`, no absolute names, no NUL) where
        // stamp sees the tar itself (gzip, uncompressed); a zstd layer is hashed as one stream.
        let entriesToo = !roots.isEmpty || MediaType.layerCompression(l.mediaType) != .zstd
        do {
            let reader = try LayerReader(
                source: source, mode: entriesToo ? .tar : .raw, label: what, hashTar: entriesToo,
                pipelined: l.size > MergedView.pipelineThreshold)
            layerReader = reader
            if !entriesToo {
                if try reader.next() != nil { try reader.readData(into: diff) }
                diffID = diff.digester.finalizeDigest()
            } else {
                var c = MergedView.LayerChanges()
                // The frontend's files of `AssetTree.largeFile` or more go to a spool on disk (read
                // back one at a time by the asset checks), not to memory.
                try MergedView.readEntries(reader, l, index, inRoots, inRoots, inRoots, &c, spool: { try AssetSpool() })
                if !roots.isEmpty { changes = c }
                diffID = try reader.finishTarDigest()
            }
            let declared = MediaType.layerCompression(l.mediaType)
            if let found = reader.detectedCompression, let declared, found != declared {
                report.findings.append(
                    Finding(
                        .layerCompressionMismatch,
                        "\(what): media type \(l.mediaType) says \(declared.rawValue), content is \(found.rawValue)",
                        digest: l.digest, expected: declared.rawValue, found: found.rawValue))
            }
        } catch { failure = "\(what): cannot decompress: \(error)" }
        layerReader?.drain()
        let found: String
        do { found = try source.finish() } catch {
            report.findings.append(Finding(.blobUnreadable, "\(what): \(error)", digest: l.digest))
            return (nil, nil)
        }
        report.bytesChecked += source.count
        report.blobsChecked += 1
        if found != l.digest {
            report.findings.append(
                Finding(
                    .blobDigestMismatch, "\(what): digest mismatch: content is \(found)", digest: l.digest,
                    expected: l.digest, found: found))
            return (nil, nil)
        }
        if let failure {
            report.findings.append(Finding(.layerUndecompressable, failure, digest: l.digest))
            return (nil, nil)
        }
        if diffID == nil {
            // libarchive decompressed the tar itself: the diff_id takes a raw pass of its own.
            var again = VerifyReport(reference: report.reference)
            diffID = checkLayer(l, index: index, store: store, report: &again).0
            report.findings += again.findings
        }
        return (diffID, changes)
    }

    /// An image's env as a dictionary (the last of a name given twice).
    static func env(_ img: PlatformImage) -> [String: String] {
        Dictionary(
            (img.config["config"]?["Env"]?.arrayValue ?? []).compactMap { $0.stringValue }.map {
                e -> (String, String) in
                guard let eq = e.firstIndex(of: "=") else { return (e, "") }
                return (String(e[..<eq]), String(e[e.index(after: eq)...]))
            }, uniquingKeysWith: { _, b in b })
    }

    /// A stamp of labels and env only (`--profile generic` without `--version-json`): a version
    /// label and `IMAGE_VERSION` in the env, no version.json named.
    static func isLabelsOnlyStamp(_ img: PlatformImage) -> Bool {
        img.labels[AnnotationKey.stampVersionJSON] == nil && img.labels[AnnotationKey.version] != nil
            && env(img)[Stamp.Env.version] != nil
    }

    /// Every place the stamp repeats `key` (label, manifest and index annotations, env) says
    /// `expected`, which `source` gives.
    static func agree(
        _ name: String, _ expected: String?, _ key: String, _ envKey: String?, img: PlatformImage,
        indexAnnotations: [String: String]?, source: String, env: [String: String], report: inout VerifyReport
    ) {
        let where_ = "\(img.platform)"
        var sources: [(String, String?)] = [("label \(key)", img.labels[key])]
        if ImageFormat(mediaType: img.descriptor.mediaType).hasAnnotations {
            sources.append(("manifest annotation \(key)", img.annotations[key]))
        }
        if let ia = indexAnnotations { sources.append(("index annotation \(key)", ia[key])) }
        if let envKey { sources.append(("env \(envKey)", env[envKey])) }
        for (what, value) in sources where value != expected && what != source {
            report.findings.append(
                Finding(
                    .stampValueMismatch,
                    "\(where_): \(what) is \(value.map { "\"\($0)\"" } ?? "missing") but \(source) says "
                        + "\(expected.map { "\"\($0)\"" } ?? "nothing") (\(name))",
                    platform: where_, path: source.hasPrefix("label ") ? nil : source, expected: expected, found: value)
            )
        }
    }

    /// version.txt = version.json = labels = annotations = env, for every platform.
    static func checkStamp(
        _ image: LoadedImage, stampLayers: [String: Result<(files: [String: LayerFile], complete: Bool), Error>],
        layerChanges: consuming [String: MergedView.LayerChanges], report: inout VerifyReport
    ) -> StampFacts? {
        var layerChanges = layerChanges
        // How many images still to check use each layer.
        var usesLeft: [String: Int] = [:]
        for img in image.images { for l in img.layers { usesLeft[l.digest, default: 0] += 1 } }
        var facts: StampFacts?
        // Docker's manifests and lists carry no annotations: the labels hold the stamp there.
        let indexAnnotations =
            ImageFormat(mediaType: image.top.mediaType).hasAnnotations ? image.index?["annotations"]?.stringMap : nil
        for img in image.images {
            let where_ = "\(img.platform)"
            let labels = img.labels
            let environment = env(img)
            guard let jsonPath = labels[AnnotationKey.stampVersionJSON] else {
                if labels[AnnotationKey.version] == nil {
                    report.findings.append(
                        Finding(
                            .stampMissing,
                            "\(where_): not stamped (no \(AnnotationKey.version) label); use --integrity-only to "
                                + "check blobs alone",
                            platform: where_))
                } else if isLabelsOnlyStamp(img), let v = labels[AnnotationKey.version] {
                    // A stamp of labels and env only (`--profile generic` without `--version-json`):
                    // no layer to read; the labels, annotations and env must agree.
                    facts = StampFacts(
                        version: v, revision: labels[AnnotationKey.revision], created: labels[AnnotationKey.created])
                    for (name, key, envKey) in [
                        ("version", AnnotationKey.version, Stamp.Env.version),
                        ("revision", AnnotationKey.revision, Stamp.Env.revision),
                        ("created", AnnotationKey.created, Stamp.Env.created),
                    ] {
                        agree(
                            name, labels[key], key, envKey, img: img, indexAnnotations: indexAnnotations,
                            source: "label \(key)", env: environment, report: &report)
                    }
                } else {
                    report.findings.append(
                        Finding(
                            .stampLabelMissing,
                            "\(where_): label \(AnnotationKey.stampVersionJSON) is missing, so version.json cannot be "
                                + "found",
                            platform: where_))
                }
                continue
            }
            guard let top = img.layers.last else {
                report.findings.append(Finding(.stampNoLayers, "\(where_): no layers", platform: where_))
                continue
            }
            var files: [String: LayerFile]
            let complete: Bool
            do {
                (files, complete) = try
                    (stampLayers[top.digest]
                    ?? Result {
                        try StampReader.files(
                            in: top, store: image.store, wanted: [Path.clean(jsonPath) ?? ""],
                            maxEntries: StampReader.listedEntries)
                    }).get()
            } catch {
                report.findings.append(
                    Finding(
                        .stampLayerUnreadable, "\(where_): cannot read the stamp layer \(top.digest): \(error)",
                        platform: where_, digest: top.digest))
                continue
            }
            guard let jsonBytes = files[Path.clean(jsonPath) ?? ""]?.bytes else {
                report.findings.append(
                    Finding(
                        .stampVersionJSONMissing,
                        "\(where_): \(jsonPath) (named by label \(AnnotationKey.stampVersionJSON)) is not in the top "
                            + "layer \(Digest.short(top.digest))",
                        platform: where_, path: jsonPath, digest: top.digest))
                continue
            }
            guard let doc = try? JSONValue.parse(jsonBytes), doc.isObject else {
                report.findings.append(
                    Finding(
                        .stampVersionJSONInvalid, "\(where_): \(jsonPath) is not a JSON object", platform: where_,
                        path: jsonPath))
                continue
            }
            let v = doc["version"]?.stringValue, r = doc["revision"]?.stringValue, c = doc["created"]?.stringValue
            let versionFile = doc["stamp"]?["versionFile"]?.stringValue
            if !complete {
                // The first read listed only some of the layer's files: the ones version.json
                // names are read now, by name.
                let named = [
                    versionFile, doc["stamp"]?["healthScript"]?.stringValue,
                    doc["stamp"]?["publicVersionJson"]?.stringValue, jsonPath,
                ].compactMap { $0.flatMap { Path.clean($0) } }
                if let found = try? StampReader.files(
                    in: top, store: image.store, wanted: Set(named), maxEntries: 0)
                {
                    files = found.files
                }
            }
            facts = StampFacts(
                version: v, revision: r, created: c, versionJSONPath: jsonPath, versionFilePath: versionFile,
                document: doc)
            func same(_ name: String, _ expected: String?, _ key: String, _ envKey: String?) {
                agree(
                    name, expected, key, envKey, img: img, indexAnnotations: indexAnnotations, source: jsonPath,
                    env: environment, report: &report)
            }
            guard let v else {
                report.findings.append(
                    Finding(.stampNoVersion, "\(where_): \(jsonPath) has no version", platform: where_, path: jsonPath))
                continue
            }
            same("version", v, AnnotationKey.version, Stamp.Env.version)
            same("revision", r, AnnotationKey.revision, Stamp.Env.revision)
            same("created", c, AnnotationKey.created, Stamp.Env.created)
            if let bd = doc["base"]?["digest"]?.stringValue, labels[AnnotationKey.baseDigest] != bd {
                report.findings.append(
                    Finding(
                        .stampBaseDigestMismatch,
                        "\(where_): label \(AnnotationKey.baseDigest) is "
                            + "\(labels[AnnotationKey.baseDigest] ?? "missing") but \(jsonPath) says \(bd)",
                        platform: where_, path: jsonPath, expected: bd, found: labels[AnnotationKey.baseDigest]))
            }
            if let c, img.config["created"]?.stringValue != c {
                report.findings.append(
                    Finding(
                        .stampCreatedMismatch,
                        "\(where_): config created is \(img.config["created"]?.stringValue ?? "missing") but "
                            + "\(jsonPath) says \(c)",
                        platform: where_, path: jsonPath, expected: c, found: img.config["created"]?.stringValue))
            }
            if let vf = versionFile {
                if let txt = StampReader.get(Path.clean(vf) ?? "", files, layer: top, store: image.store)?.bytes {
                    let text = String(decoding: txt, as: UTF8.self)
                    if text != v + "\n" {
                        report.findings.append(
                            Finding(
                                .stampVersionFileMismatch,
                                "\(where_): \(vf) holds \"\(text.trimmingCharacters(in: .newlines))\" but \(jsonPath) "
                                    + "says \"\(v)\"",
                                platform: where_, path: vf, expected: v, found: text.trimmingCharacters(in: .newlines)))
                    }
                } else {
                    report.findings.append(
                        Finding(
                            .stampVersionFileMissing, "\(where_): \(vf) (named by \(jsonPath)) is not in the top layer",
                            platform: where_, path: vf))
                }
            }
            if let assets = doc["assets"], assets.isObject {
                if img.layers.allSatisfy({ layerChanges[$0.digest] != nil }) {
                    // Applied bottom-up, each layer's changes let go once no image still to check
                    // needs them (a frontend's entries are not held twice).
                    // Each layer's changes taken when no image still to check needs them (and then
                    // trimmed of what the layers above hide), applied bottom-up, let go once applied.
                    var stack: [MergedView.LayerChanges] = []
                    var alone: [Bool] = []
                    for l in img.layers {
                        usesLeft[l.digest, default: 1] -= 1
                        let last = usesLeft[l.digest]! <= 0
                        stack.append(last ? layerChanges.removeValue(forKey: l.digest)! : layerChanges[l.digest]!)
                        // A layer twice in one image is not trimmed by itself.
                        alone.append(last && img.layers.filter { $0.digest == l.digest }.count == 1)
                    }
                    MergedView.dropShadowed(&stack, mutable: alone)
                    let view = MergedView()
                    for i in stack.indices {
                        view.apply(stack[i])
                        stack[i] = MergedView.LayerChanges()
                    }
                    report.findings += AssetStage.verify(assets, view: view, platform: where_)
                } else {
                    report.findings.append(
                        Finding(
                            .assetsUnreadable, "\(where_): the frontend cannot be checked: a layer could not be read",
                            platform: where_))
                }
            }
            if let script = doc["stamp"]?["healthScript"]?.stringValue {
                checkHealth(
                    script: script,
                    file: StampReader.get(Path.clean(script) ?? "", files, layer: top, store: image.store),
                    config: img.config, where_: where_, report: &report)
            }
            if let pub = doc["stamp"]?["publicVersionJson"]?.stringValue,
                StampReader.get(Path.clean(pub) ?? "", files, layer: top, store: image.store)?.bytes != jsonBytes
            {
                report.findings.append(
                    Finding(
                        .stampPublicVersionJSONMismatch,
                        "\(where_): \(pub) (named by \(jsonPath)) is missing or differs from \(jsonPath)",
                        platform: where_, path: pub))
            }
        }
        return facts
    }

    /// The script version.json names is in the stamp layer, executable, and what Healthcheck runs.
    static func checkHealth(
        script: String, file: LayerFile?, config: JSONValue, where_: String, report: inout VerifyReport
    ) {
        if let f = file {
            if f.mode & 0o111 == 0 {
                report.findings.append(
                    Finding(
                        .healthNotExecutable,
                        "\(where_): health check \(script) is not executable (mode \(String(f.mode, radix: 8)))",
                        platform: where_, path: script, found: String(f.mode, radix: 8)))
            }
            if !f.bytes.starts(with: Array("#!/bin/sh\n".utf8)) {
                report.findings.append(
                    Finding(
                        .healthNoShebang, "\(where_): health check \(script) does not start with #!/bin/sh",
                        platform: where_, path: script))
            }
        } else {
            report.findings.append(
                Finding(
                    .healthScriptMissing, "\(where_): health check \(script) is not in the stamp layer",
                    platform: where_, path: script))
        }
        let test = config["config"]?["Healthcheck"]?["Test"]?.arrayValue?.compactMap(\.stringValue) ?? []
        let named =
            test.first == "CMD"
            ? test.dropFirst().first == script
            : (test.first == "CMD-SHELL" && test.dropFirst().first?.contains(script) == true)
        if !named {
            let runs = test.isEmpty ? "nothing" : JSONValue.encodeString(.array(test.map { .string($0) }))
            report.findings.append(
                Finding(
                    .healthNotConfigured, "\(where_): Healthcheck runs \(runs), not \(script)", platform: where_,
                    path: script,
                    expected: script, found: runs))
        }
    }
}

/// A small regular file read from a layer.
public struct LayerFile: Sendable {
    public var bytes: [UInt8]
    public var mode: UInt32
    /// Its bytes were not kept (`StampReader.budget`); `StampReader.get` reads them.
    public var skipped = false
}

/// Reads the small regular files of a layer (the stamp layer), with paths cleaned. Stamp's own
/// files (version.json, version.txt, the health check) are a few KB; `limit` leaves out the
/// frontend's images and bundles, which the asset checks read on their own. At most `budget`
/// bytes are kept in all (a hostile top layer of 20,000 × 64 KB files is not read into memory);
/// `wanted` paths are read whatever the budget, and `get` reads a file that the budget left out.
public enum StampReader {
    public static let budget = 16 << 20

    public static func files(
        in layer: Descriptor, store: BlobStore, limit: Int = 64 << 10, budget: Int = StampReader.budget,
        wanted: Set<String> = []
    ) throws -> [String: LayerFile] {
        try files(in: layer, store: store, limit: limit, budget: budget, wanted: wanted, maxEntries: .max).files
    }

    /// The same, recording at most `maxEntries` files besides the `wanted` ones and opaque
    /// whiteouts (a stamp layer with a frontend of 100,000 files is not listed in memory):
    /// `complete` says whether every small file is in `files`.
    public static func files(
        in layer: Descriptor, store: BlobStore, limit: Int = 64 << 10, budget: Int = StampReader.budget,
        wanted: Set<String>, maxEntries: Int
    ) throws -> (files: [String: LayerFile], complete: Bool) {
        let loc = try store.require(layer)
        let reader = try LayerReader(source: loc.open(), mode: .tar, label: "layer \(layer.digest)")
        var out: [String: LayerFile] = [:]
        var kept = 0, others = 0, complete = true
        while let e = try reader.next() {
            guard Path.isSafeEntryName(e.path), let p = Path.clean(e.path) else {
                throw StampError.badInput("layer \(layer.digest): entry \"\(e.path)\" escapes the root")
            }
            guard e.type == .file, e.size <= limit else { continue }
            if !wanted.contains(p) && Path.basename(p) != ".wh..wh..opq" {
                guard others < maxEntries else {
                    complete = false
                    continue
                }
                others += 1
            }
            if wanted.contains(p) || e.size == 0 || kept + Int(e.size) <= budget {
                out[p] = LayerFile(bytes: try reader.readData(limit: limit), mode: e.mode)
                kept += Int(e.size)
            } else {
                out[p] = LayerFile(bytes: [], mode: e.mode, skipped: true)
            }
        }
        return (out, complete)
    }

    /// How many of a stamp layer's other files `stamp verify` lists on its first read.
    static let listedEntries = 4096

    /// `files[path]`, read again from the layer when the budget left its bytes out.
    static func get(_ path: String, _ files: [String: LayerFile], layer: Descriptor, store: BlobStore) -> LayerFile? {
        guard let f = files[path] else { return nil }
        guard f.skipped else { return f }
        return (try? Self.files(in: layer, store: store, budget: 0, wanted: [path]))?[path]
    }
}
