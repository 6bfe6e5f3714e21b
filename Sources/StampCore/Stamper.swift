import Foundation
import Assets
import Hashing
import IO
import Layers
import OCI
import Registry

/// The result of `stamp build`, for people and for `--json`.
public struct BuildResult: Sendable {
    public var output: String
    public var digest: String
    public var mediaType: String
    /// Size of the top manifest or index, for a descriptor of the result.
    public var size: Int64 = 0
    /// The image's name where it was written (registry `HOST/REPO:TAG`, or the archive's tag).
    public var imageName: String?
    public var version: String
    public var revision: String?
    public var created: String
    public var baseName: String?
    public var baseDigest: String
    public var platforms: [PlatformEntry]
    public var layer: (digest: String, diffID: String, size: Int64, files: [String])?
    public var droppedAttestations: Int
    /// Every name the image was written under: `HOST/REPO:TAG` pushed, or `NAME:TAG` in the
    /// archive's RepoTags.
    public var names: [String] = []
    /// What the push did, when the output is a registry.
    public var pushed: PushSummary?
    /// Base layers the health check and asset stage took from the scan cache, and read.
    public var scan: (fromCache: Int, read: Int) = (0, 0)
    /// What the app needs from whoever runs it (`stamp canary` reads it from the records).
    public var app: AppFacts?

    /// What `--metadata-file` writes: the keys `docker buildx build --metadata-file` writes for
    /// an image (`containerimage.digest`; `containerimage.descriptor`, with its `platform` for
    /// one platform; `containerimage.config.digest` for one platform, as buildx has one config
    /// then; `image.name`, every name written, comma-joined), then `schemaVersion` and stamp's own.
    public var metadata: JSONValue {
        var j = BuildxMetadata.keys(
            mediaType: mediaType, digest: digest, size: size, platforms: platforms,
            names: names.isEmpty ? imageName.map { [$0] } ?? [] : names)
        j["schemaVersion"] = JSONValue(Int64(OutputSchema.version))
        j["stamp.version"] = .string(version)
        if let r = revision { j["stamp.revision"] = .string(r) }
        j["stamp.created"] = .string(created)
        j["stamp.output"] = .string(output)
        j["stamp.platforms"] = .object(platforms.map { ($0.platform, .string($0.manifest)) })
        if let app { j["stamp.app"] = app.json }
        return j
    }

    public var json: JSONValue {
        var j: JSONValue = .object([
            ("schemaVersion", JSONValue(Int64(OutputSchema.version))),
            ("output", .string(output)), ("digest", .string(digest)), ("mediaType", .string(mediaType)),
            ("version", .string(version)), ("created", .string(created)),
            (
                "base",
                .object([("digest", .string(baseDigest))] + (baseName.map { [("name", JSONValue.string($0))] } ?? []))
            ),
            ("platforms", .array(platforms.map(\.json))),
            ("droppedAttestations", JSONValue(Int64(droppedAttestations))),
        ])
        if let r = revision { j["revision"] = .string(r) }
        if let p = pushed { j["push"] = p.json }
        if let app { j["app"] = app.json }
        if scan.fromCache + scan.read > 0 {
            j["scan"] = .object([
                ("layersFromCache", JSONValue(Int64(scan.fromCache))), ("layersRead", JSONValue(Int64(scan.read))),
            ])
        }
        if let l = layer {
            j["layer"] = .object([
                ("digest", .string(l.digest)), ("diffID", .string(l.diffID)), ("size", JSONValue(l.size)),
                ("files", .array(l.files.map { .string("/" + $0) })),
            ])
        }
        return j
    }
}

public enum Stamper {
    /// Stamps every selected platform of `plan.base` and writes the result to `plan.output`.
    public static func build(_ plan: StampPlan, diagnostics: Diagnostics = .stderr) throws -> BuildResult {
        guard let destination = plan.output else {
            throw StampError.usage("missing --output (e.g. oci-archive:stamped.tar)")
        }
        if plan.base == destination || (plan.base.path == destination.path && destination.transport != "oci") {
            throw StampError.usage(
                "\(destination.path): is the file the image is read from (\(plan.base)); write the output elsewhere")
        }
        var registryOptions = plan.registry
        registryOptions.notice = diagnostics.notice
        let client = RegistryClient(options: registryOptions)
        let sink = destination.destination(registry: client, mountFrom: plan.base.registry)
        try sink.preflight(source: plan.base)
        if let lockPath = plan.lockFile {
            // Found unwritable before the image is, not after.
            let dir = Path.dirname(lockPath)
            var st = stat()
            if lstat(lockPath, &st) == 0, (st.st_mode & S_IFMT) != S_IFREG {
                throw StampError.output(
                    "--lock: \(lockPath): exists and is not a regular file (\(Path.kind(st.st_mode)))")
            }
            guard Path.isDirectory(dir) else {
                throw StampError.output("--lock: \(lockPath): folder \(dir) does not exist")
            }
            guard access(dir, W_OK) == 0 else {
                throw StampError.output("--lock: \(lockPath): folder \(dir) is not writable")
            }
        }
        var baseReference = plan.base
        var lockedDigest: String?
        if plan.locked, let lockPath = plan.lockFile {
            let lock = try LockFile.read(lockPath)
            guard lock.base.reference == plan.base.description else {
                throw StampError.usage("--locked: \(lockPath) locks \(lock.base.reference), not \(plan.base)")
            }
            lockedDigest = lock.base.digest
            if let r = plan.base.registry {
                let now = try client.manifestDigest(r)
                guard now == lock.base.digest else {
                    throw StampError.moved("--locked: \(r) moved: locked at \(lock.base.digest), now \(now ?? "gone")")
                }
                // Build from exactly the locked digest, whatever the tag does meanwhile.
                baseReference = .registry(r.with(tag: r.tag, digest: lock.base.digest))
            }
        }
        let opening = diagnostics.step("reading the base \(baseReference)")
        let base = try ImageReader.open(baseReference, registry: client)
        opening.done("\(base.digest), \(base.images.count) platform(s)")
        if let lockedDigest, base.digest != lockedDigest {
            throw StampError.moved("--locked: \(plan.base) moved: locked at \(lockedDigest), now \(base.digest)")
        }
        if !base.attestations.isEmpty {
            diagnostics.notice(
                "notice: dropped \(base.attestations.count) attestation manifest(s) of the base (they describe the "
                    + "base's digests, not the stamped image)"
            )
        }
        var images = base.images
        if !plan.platforms.isEmpty {
            for want in plan.platforms where !images.contains(where: { $0.platform.matches(want) }) {
                throw StampError.usage(
                    "--platform: the base has no \(want) (it has "
                        + "\(images.map { $0.platform.description }.joined(separator: ", ")))"
                )
            }
            images = images.filter { img in plan.platforms.contains { img.platform.matches($0) } }
        }
        if case .dockerArchive = destination, images.count > 1 {
            throw StampError.usage(
                "docker-archive holds one image; the base has \(images.count) platforms: pick one with --platform "
                    + "(e.g. \(images[0].platform))"
            )
        }

        try checkLevels(
            plan, platforms: images.count, format: plan.format ?? ImageFormat(mediaType: base.top.mediaType))
        let baseName = resolveBaseName(plan, base)
        let removable = removableKeys(plan, images: images, diagnostics: diagnostics)
        let baseDigest = base.digest
        let stamp = Stamp(plan: plan, baseName: baseName, baseDigest: baseDigest)
        // The new layer is written beside the output (same file system, renamed into place), or
        // in $TMPDIR when the output is a registry.
        let near =
            destination.registry != nil
            ? FileManager.default.temporaryDirectory.path + "/stamp-layer"
            : destination.path.hasSuffix("/") ? String(destination.path.dropLast()) : destination.path

        // The base's layers go to an archive output while the stamp layers are built.
        let started = try sink.reserve(
            try images.flatMap { img in
                try img.layers.map { l in (l.digest, l.size, try base.store.require(l)) }
            }, created: plan.created, sync: plan.fsync)

        // The stamp layer of each platform; platforms whose entries are the same share one blob.
        var layers: [BuiltLayer?] = []
        var historyTexts: [String] = []
        var built: [String: BuiltLayer] = [:]
        // A local frontend needs nothing of the image: it is hashed while the layers are read.
        let localAssets = plan.assets.flatMap { a in
            a.localFolder == nil ? nil : Background { AssetStage.hashLocal(a, publicVersion: plan.publicVersionJSON) }
        }
        let views = try scan(plan, images: images, store: base.store, slots: started, diagnostics: diagnostics)
        // The base's layers the scan did not read (from its cache, or no scan) are copied now,
        // while the new layer is built.
        started?.copyUnclaimed()
        var sharedAssets = SharedAssets()
        sharedAssets.local = localAssets?.value
        for (img, view) in zip(images, views) {
            let entries = try StampLayer.withParents(
                try stampEntries(
                    plan, baseName: baseName, baseDigest: baseDigest, image: img, view: view,
                    shared: &sharedAssets, diagnostics: diagnostics), view: view)
            let fingerprint = StampLayer.fingerprint(entries)
            let layer: BuiltLayer?
            if entries.isEmpty {
                layer = nil
            } else if let b = built[fingerprint] {
                layer = b
            } else {
                let step = diagnostics.step("building the stamp layer for \(img.platform) (\(entries.count) entries)")
                let b = try StampLayer.write(
                    entries, created: plan.created, compression: plan.compression,
                    level: plan.compressionLevel, beside: near)
                step.done("\(b.descriptor.digest), \(ProgressLine.size(b.descriptor.size))")
                built[fingerprint] = b
                layer = b
            }
            layers.append(layer)
            // The files it brings (not its folders, nor what it hides), without copying the entries.
            var files: [String] = []
            for e in entries {
                if case .directory = e.content { continue }
                if !Path.basename(e.path).hasPrefix(".wh.") { files.append(e.path) }
            }
            historyTexts.append(stamp.historyText(files: files))
        }

        var blobs: [String: (size: Int64, location: BlobLocation)] = [:]
        var manifests: [Descriptor] = []
        var docker: [(platform: String, config: String, layers: [String])] = []
        var platformResults: [PlatformEntry] = []
        let annotations = stamp.annotations
        // Docker in, Docker out (podman reads Healthcheck only there), unless --format says.
        let format = plan.format ?? ImageFormat(mediaType: base.top.mediaType)
        var isDockerArchive = false
        if case .dockerArchive = destination { isDockerArchive = true }
        for (n, img) in images.enumerated() {
            let layer = layers[n]
            let config = Patch.config(
                img.config, stamp: stamp, layer: layer, historyText: historyTexts[n], removing: removable)
            let cbytes = JSONValue.encode(config)
            let cd = Descriptor(mediaType: format.config, digest: Digester.digest(cbytes), size: Int64(cbytes.count))
            blobs[cd.digest] = (cd.size, .memory(cbytes))
            for l in img.layers {
                let loc = try base.store.require(l)
                blobs[l.digest] = (l.size, loc)
            }
            if let layer {
                blobs[layer.descriptor.digest] = (
                    layer.descriptor.size,
                    .file(try ReadableFile(layer.file.path), offset: 0, length: layer.descriptor.size)
                )
            }
            // A docker-archive stores no manifest: its digest is that of the one it implies.
            let manifest =
                isDockerArchive
                ? Patch.dockerArchiveManifest(config: cd, layers: img.layers + (layer.map { [$0.descriptor] } ?? []))
                : Patch.manifest(
                    img.manifest, config: cd, layer: layer,
                    annotations: annotations
                        + LeveledAnnotation.pairs(plan.leveledAnnotations, .manifest, platform: img.platform),
                    format: format, removing: removable)
            let mbytes = JSONValue.encode(manifest)
            var md = img.descriptor
            md.mediaType = format.manifest
            md.digest = Digester.digest(mbytes)
            md.size = Int64(mbytes.count)
            md.platform = img.platform
            for (k, v) in LeveledAnnotation.pairs(plan.leveledAnnotations, .manifestDescriptor, platform: img.platform)
            {
                md.annotations[k] = v
            }
            blobs[md.digest] = (md.size, .memory(mbytes))
            manifests.append(md)
            docker.append(
                (
                    img.platform.description, cd.digest,
                    img.layers.map(\.digest) + (layer.map { [$0.descriptor.digest] } ?? [])
                ))
            platformResults.append(
                PlatformEntry(platform: img.platform.description, manifest: md.digest, config: cd.digest))
        }

        var top: Descriptor
        if manifests.count == 1 {
            top = Descriptor(
                mediaType: format.manifest, digest: manifests[0].digest, size: manifests[0].size,
                platform: manifests[0].platform)
        } else {
            let index = Patch.index(
                base.index ?? .object([]), manifests: manifests,
                annotations: annotations + LeveledAnnotation.pairs(plan.leveledAnnotations, .index), format: format,
                removing: removable)
            let ibytes = JSONValue.encode(index)
            top = Descriptor(mediaType: format.index, digest: Digester.digest(ibytes), size: Int64(ibytes.count))
            blobs[top.digest] = (top.size, .memory(ibytes))
        }
        var topAnnotations = stamp.topAnnotations
        for (k, v) in LeveledAnnotation.pairs(plan.leveledAnnotations, .indexDescriptor) { topAnnotations[k] = v }
        if let tag = plan.tag { topAnnotations[AnnotationKey.refName] = tag }
        top.annotations = topAnnotations

        var output = OutputImage(top: top, blobs: blobs, dockerImages: docker)
        output.repoTags = plan.tags.compactMap { repoTag($0, baseName ?? plan.profile.imageName ?? "stamp") }
        if destination.registry != nil {
            output.morePushTags = plan.tags
        } else {
            output.moreRefNames = Array(plan.tags.dropFirst())
        }
        output.ownBlobs = Set(layers.compactMap { $0?.descriptor.digest })
        let pushed = try sink.write(
            output, created: plan.created, reserved: started, sync: plan.fsync, diagnostics: diagnostics)
        if let lockPath = plan.lockFile {
            let lock = LockFile(
                base: .init(
                    reference: plan.base.description, digest: base.digest,
                    platforms: base.images.map { ($0.platform.description, $0.descriptor.digest) }),
                output: .init(
                    reference: destination.description, digest: top.digest,
                    platforms: platformResults.map { ($0.platform, $0.manifest) }, version: plan.version,
                    app: plan.appFacts))
            do { try lock.write(lockPath) } catch {
                throw StampError.output(
                    "the image was written (\(destination), \(top.digest)) but the lock file was not: \(error)")
            }
        }

        let imageName: String? =
            destination.registry.map { r in r.host + "/" + r.repository + (r.tag.map { ":" + $0 } ?? "") }
            ?? plan.tag.flatMap { repoTag($0, baseName ?? plan.profile.imageName ?? "stamp") }
        var names = output.repoTags
        if let r = destination.registry {
            names = []
            for t in (r.tag.map { [$0] } ?? []) + plan.tags where !names.contains(r.host + "/" + r.repository + ":" + t)
            {
                names.append(r.host + "/" + r.repository + ":" + t)
            }
        }
        var result = BuildResult(
            output: destination.description, digest: top.digest, mediaType: top.mediaType, size: top.size,
            imageName: imageName,
            version: plan.version,
            revision: plan.revision, created: plan.created.rfc3339, baseName: baseName, baseDigest: baseDigest,
            platforms: platformResults,
            layer: layers.first.flatMap { $0 }.map { ($0.descriptor.digest, $0.diffID, $0.descriptor.size, $0.paths) },
            droppedAttestations: base.attestations.count, pushed: pushed,
            scan: (views.reduce(0) { $0 + $1.layersFromCache }, views.reduce(0) { $0 + $1.layersRead }))
        result.names = names
        result.app = plan.appFacts
        return result
    }

    /// Everything the stamp layer of one platform holds: version files, health check, assets,
    /// `--add`. `image` is nil when the base is not at hand (a Dockerfile for a remote base).
    public static func stampEntries(
        _ plan: StampPlan, baseName: String?, baseDigest: String, image: PlatformImage?, store: BlobStore?,
        diagnostics: Diagnostics
    ) throws -> [LayerEntry] {
        let views = try image.map { try scan(plan, images: [$0], store: store, diagnostics: diagnostics) } ?? []
        var shared = SharedAssets()
        return try stampEntries(
            plan, baseName: baseName, baseDigest: baseDigest, image: image, view: views.first ?? MergedView(),
            shared: &shared, diagnostics: diagnostics)
    }

    /// What the checks need of each image's lower layers (nothing when there is no health check
    /// and no asset hashing): the images are read at the same time, their layers on all cores,
    /// with one progress line.
    static func scan(
        _ plan: StampPlan, images: [PlatformImage], store: BlobStore?, slots: BlobSlots? = nil,
        diagnostics: Diagnostics
    ) throws -> [MergedView] {
        guard let store, plan.health != nil || plan.assets != nil || !stampFolders(plan).isEmpty else {
            return images.map { _ in MergedView() }
        }
        let step = diagnostics.step(
            "reading the base's layers (health-check preflight, parent "
                + "folders\(plan.assets == nil ? "" : ", frontend"))"
        )
        let progress = diagnostics.progress(
            "reading the base's layers", total: images.sizeSum { $0.layers.sizeSum(\.size) })
        defer { progress.finish() }
        let cache = plan.scanCache.map(ScanCache.init(directory:))
        let views = try parallelMap(count: images.count) { i in
            Result {
                try scan(plan, image: images[i], store: store, cache: cache, slots: slots, progress: progress)
            }
        }.map { try $0.get() }
        step.done()
        return views
    }

    static func scan(
        _ plan: StampPlan, image: PlatformImage, store: BlobStore, cache: ScanCache?, slots: BlobSlots? = nil,
        progress: ProgressLine
    ) throws -> MergedView {
        // Only the entries the checks ask about are kept: folders of executables (for the
        // health check) and the frontend (for assets), besides symlinks.
        let pathDirs = image.searchPath.compactMap { Path.clean($0) }
        let bins = Set(["bin", "sbin", "usr/bin", "usr/sbin", "usr/local/bin", "usr/local/sbin"] + pathDirs)
        let root = plan.assets.flatMap { Path.clean($0.root) }
        let capture = AssetStage.capture(plan.assets)
        // The folders the stamp layer writes into, and what `--add` may bring, for their owners.
        let folders = stampFolders(plan)
        let added = plan.adds.compactMap { Path.clean($0.destination) }
        let keep: @Sendable (String) -> Bool = { p in
            bins.contains(p.utf8.contains(0x2F) ? Path.dirname(p) : "") || (root.map { p.hasPrefix($0 + "/") } ?? false)
                || capture(p)
                || folders.contains(p) || added.contains { p == $0 || p.hasPrefix($0 + "/") }
        }
        // What keep and capture select, for the scan cache's key.
        let filter = [
            "bins " + bins.sorted().joined(separator: ":"), "root " + (root ?? ""),
            "capture " + AssetStage.captureKey(plan.assets), "folders " + folders.sorted().joined(separator: ":"),
            "added " + added.joined(separator: ":"),
        ].joined(separator: "\n")
        // The frontend's files of `AssetTree.largeFile` or more (images, fonts, and scripts and
        // styles too) go to a spool on disk, not to memory: the hasher reads each when it needs it.
        // (Not the server files --rewrite names: the stage takes their bytes from memory.)
        let rewritten = Set(plan.assets?.rewrite.compactMap { Path.clean($0) } ?? [])
        let spooled: @Sendable (String) -> Bool = { p in
            (root.map { p.hasPrefix($0 + "/") } ?? false) && !rewritten.contains(p)
        }
        return try MergedView.build(
            layers: image.layers, store: store, keep: keep, capture: capture, digestOnly: spooled, progress: progress,
            cache: cache, filter: filter, slots: slots,
            budget: CaptureBudget(limit: plan.assets?.maxBytes ?? AssetPlan.defaultMaxBytes), spool: true)
    }

    /// The folders above every path the stamp layer may write (version files, health script,
    /// `--add` targets, the frontend and the server files it rewrites).
    static func stampFolders(_ plan: StampPlan) -> Set<String> {
        var paths = [plan.versionFile, plan.versionJSON, plan.publicVersionJSON, plan.health?.scriptPath].compactMap {
            $0
        }
        paths += plan.adds.map { $0.destination + "/x" }
        if let a = plan.assets { paths += [a.root + "/x"] + a.rewrite }
        return StampLayer.ancestors(of: paths)
    }

    /// The asset stage's output for a local frontend, kept for the next platform whose files to
    /// rewrite are the same (a multi-platform base hashes its frontend once).
    struct SharedAssets {
        var key: [String]?
        var output: AssetStage.Output?
        /// A local frontend's hash, the same for every platform.
        var local: Result<AssetResult, Error>?
    }

    static func stampEntries(
        _ plan: StampPlan, baseName: String?, baseDigest: String, image: PlatformImage?, view: MergedView,
        shared: inout SharedAssets, diagnostics: Diagnostics
    ) throws -> [LayerEntry] {
        if let image, let h = plan.health { try preflight(image, view: view, health: h, diagnostics: diagnostics) }
        var assetOutput: AssetStage.Output?
        if let a = plan.assets {
            guard image != nil || a.localFolder != nil else {
                throw StampError.usage(
                    "--hash-assets reads the base's frontend: give a local base (oci-archive:...) or --assets DIR")
            }
            // What the stage reads of the image for a local frontend: the files it rewrites.
            let key =
                a.localFolder == nil
                ? nil
                : a.rewrite.compactMap { Path.clean($0) }.map { p in
                    "\(p) \(view.entries[p]?.mode ?? 0) \(view.contents[p].map { Digester.hex($0) } ?? "-")"
                }
            if let key, key == shared.key, let o = shared.output {
                assetOutput = o
            } else {
                if a.localFolder != nil && shared.local == nil {
                    shared.local = AssetStage.hashLocal(a, publicVersion: plan.publicVersionJSON)
                }
                assetOutput = try AssetStage.run(
                    a, view: view, platform: image?.platform.description ?? "assets",
                    publicVersion: plan.publicVersionJSON,
                    local: shared.local)
                shared.key = key
                // Kept for the next platform only when it can be shared (a local frontend).
                shared.output = key == nil ? nil : assetOutput
            }
        }
        let versionJSON = StampLayer.versionJSON(
            plan: plan, baseName: baseName, baseDigest: baseDigest, assets: assetOutput?.info)
        // Handed over, not copied: `shared` keeps its own reference when it is shared.
        let extra = assetOutput?.entries ?? []
        assetOutput = nil
        return try StampLayer.entries(plan: plan, versionJSON: versionJSON, extra: consume extra)
    }

    /// The health check needs /bin/sh and an HTTP client in the image it runs in.
    static func preflight(_ img: PlatformImage, view: MergedView, health: HealthPlan, diagnostics: Diagnostics) throws {
        let search = img.searchPath
        var problems: [String] = []
        if !view.isFile("bin/sh") { problems.append("no /bin/sh") }
        if view.which(["curl", "wget", "node"], searchPath: search) == nil {
            if let bb = view.which(["busybox"], searchPath: search) {
                // busybox ash runs its applets without links; the script calls `busybox wget`.
                diagnostics.notice(
                    "warning: \(img.platform): no curl, wget or node on PATH; the health check will use /\(bb) wget")
            } else {
                problems.append("no curl, wget or node on PATH (\(search.joined(separator: ":")))")
            }
        }
        guard !problems.isEmpty else { return }
        let message = "\(img.platform): the health check cannot run in this image: \(problems.joined(separator: "; "))"
        if health.allowMissingClient {
            diagnostics.notice("warning: \(message) (building anyway: --allow-missing-client)")
        } else {
            throw StampError.badInput(message + " (pass --allow-missing-client to build anyway, or --no-healthcheck)")
        }
    }

    /// The base's name for `org.opencontainers.image.base.name`: `--base-name`, else what the
    /// source calls it (a bare tag is joined to the profile's repository).
    /// `org.opencontainers.image.base.name`: `--base-name`, else the name the base gives itself
    /// when it is a full reference (a registry reference, a docker-archive's RepoTags, a layout
    /// `ref.name` such as `docker.io/org/app:1.0`). A bare tag (`1.16.0`) names no repository:
    /// then there is no base name rather than a guess.
    static func resolveBaseName(_ plan: StampPlan, _ base: LoadedImage) -> String? {
        if let b = plan.baseName { return b }
        if let n = base.sourceName, n.contains("/") { return n }
        return nil
    }

    /// Each annotation level names a document this output has: `index` and `manifest-descriptor`
    /// an index (two platforms or more), `index-descriptor` a layout's or archive's index.json,
    /// and Docker's format none at all.
    static func checkLevels(_ plan: StampPlan, platforms: Int, format: ImageFormat) throws {
        let levels = Set(plan.leveledAnnotations.flatMap(\.levels))
        guard !levels.isEmpty else { return }
        if !format.hasAnnotations {
            throw StampError.usage(
                "--annotation: a Docker-format image has no annotations; use --label, or --format oci")
        }
        if platforms < 2, let l = levels.first(where: { $0 == .index || $0 == .manifestDescriptor }) {
            throw StampError.usage(
                "--annotation \(l.rawValue):…: the output is one manifest with no index (one platform); use manifest: "
                    + "or index-descriptor:"
            )
        }
        if plan.output?.registry != nil, levels.contains(.indexDescriptor) {
            throw StampError.usage(
                "--annotation index-descriptor:…: a registry keeps no descriptor of the top document; it is for oci: "
                    + "and oci-archive: outputs"
            )
        }
    }

    /// The keys `Patch.merge` may remove from this base: every key stamp owns that this build
    /// does not set, except an unstamped base's own source (the app's repository) when this
    /// build names none. A revision (upstream's or an earlier stamp's: version.json would
    /// contradict it) or an earlier stamp's source that goes is said once each.
    static func removableKeys(_ plan: StampPlan, images: [PlatformImage], diagnostics: Diagnostics) -> Set<String> {
        let stamped = images.contains { $0.labels[AnnotationKey.stampVersionJSON] != nil }
        var unset: [(String, String)] = []
        if plan.revision == nil {
            unset.append(
                (AnnotationKey.revision, "a revision (--revision, $GITHUB_SHA, $CI_COMMIT_SHA or a git checkout)"))
        }
        if plan.source == nil && stamped {
            unset.append(
                (
                    AnnotationKey.source,
                    "a source (--source, the CI's repository variables or the checkout's origin remote)"
                ))
        }
        for (key, what) in unset {
            if let old = images.lazy.compactMap({ $0.labels[key] ?? $0.annotations[key] }).first {
                diagnostics.notice("warning: the base's \(key) (\(old)) is removed: this build has no \(what)")
            }
        }
        return plan.source == nil && !stamped
            ? StampPlan.ownedKeys.subtracting([AnnotationKey.source]) : StampPlan.ownedKeys
    }

    /// `NAME:TAG` for Docker's RepoTags: a bare `--tag` is joined to the base's repository.
    /// `repository` nil: only a tag that names its repository (`NAME:TAG`) has one.
    static func repoTag(_ tag: String, _ repository: String?) -> String? {
        let last = tag.split(separator: "/").last.map(String.init) ?? tag
        if last.contains(":") { return tag }
        guard var repo = repository else { return nil }
        if let at = repo.firstIndex(of: "@") { repo = String(repo[..<at]) }
        if let colon = repo.lastIndex(of: ":"), !repo[colon...].contains("/") { repo = String(repo[..<colon]) }
        return repo.lowercased() + ":" + tag
    }

}

/// The keys `docker buildx build --metadata-file` writes for an image, which build's and push's
/// metadata files share: `containerimage.digest`; `containerimage.descriptor`, with its
/// `platform` for one platform; `containerimage.config.digest` for one platform (buildx has one
/// config then); `image.name`, every name written, comma-joined.
public enum BuildxMetadata {
    public static func keys(mediaType: String, digest: String, size: Int64, platforms: [PlatformEntry], names: [String])
        -> JSONValue
    {
        var descriptor: JSONValue = .object([
            ("mediaType", .string(mediaType)), ("digest", .string(digest)), ("size", JSONValue(size)),
        ])
        let single = platforms.count == 1 ? platforms[0] : nil
        if let p = single.flatMap({ Platform.parse($0.platform) }) { descriptor["platform"] = p.json }
        var j: JSONValue = .object([
            ("containerimage.descriptor", descriptor), ("containerimage.digest", .string(digest)),
        ])
        if let single { j["containerimage.config.digest"] = .string(single.config) }
        if !names.isEmpty { j["image.name"] = .string(names.joined(separator: ",")) }
        return j
    }
}
