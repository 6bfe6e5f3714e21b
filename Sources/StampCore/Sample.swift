import Foundation
import Hashing
import IO
import Layers
import OCI

/// A small image shaped like the official anything-llm image, generated offline: for `make demo`
/// and for the tests. Deterministic: the same options give the same bytes.
public enum SampleImage {
    public enum Format: String, CaseIterable, Sendable {
        /// oci-archive tar.
        case ociArchive = "oci-archive"
        /// OCI layout folder.
        case oci
        /// `docker save` before Docker 25: `<id>/layer.tar`, `<id>.json` config.
        case dockerArchive = "docker-archive"
        /// `docker save` since Docker 25: `blobs/sha256` plus `manifest.json` and `index.json`.
        case dockerArchiveOCI = "docker-archive-oci"
    }

    public struct Options: Sendable {
        public var platforms: [Platform] = [
            Platform(os: "linux", architecture: "amd64"), Platform(os: "linux", architecture: "arm64", variant: "v8"),
        ]
        /// Adds BuildKit-style attestation manifests (`unknown/unknown`) to the index.
        public var attestations = true
        /// `index.json` points at the image index as a blob (what `skopeo copy --all` writes).
        public var nested = true
        /// Compression of the three layers.
        public var compression: [Compression] = [.gzip, .gzip, .gzip]
        /// `ref.name` of the image in `index.json`; the tag in Docker's RepoTags.
        public var tag = "1.16.0"
        /// A file from disk put into the app layer as `/app/server/storage/blob.bin` (big-layer tests).
        public var extraFile: String?
        /// Paths (without leading /) left out of the layers, e.g. `usr/bin/curl`.
        public var omit: Set<String> = []
        public init() {}
    }

    static let mtime: Int64 = 1_740_787_200  // 2025-03-01T00:00:00Z
    static let created = "2025-03-01T00:00:00Z"

    struct Layer {
        var compressed: [UInt8]
        var diffID: String
        var mediaType: String
        var uncompressed: [UInt8]?
    }

    /// Writes the sample to `path` in `format`.
    public static func write(to path: String, format: Format, options: Options = .init()) throws {
        var opts = options
        if format == .dockerArchive || format == .dockerArchiveOCI {
            opts.platforms = Array(opts.platforms.prefix(1))
            opts.attestations = false
            opts.compression = opts.compression.map { _ in Compression.none }
        }
        var blobs: [String: [UInt8]] = [:]
        var extraBlob: (digest: String, file: WritableFile)?
        var manifests: [Descriptor] = []
        var configs: [(digest: String, bytes: [UInt8], layers: [Layer], layerDigests: [String])] = []
        for platform in opts.platforms {
            var layers: [Layer] = []
            var layerDigests: [String] = []
            for (i, all) in layerContents(platform).enumerated() {
                let entries = all.filter { e in
                    switch e {
                    case .dir(let p, _), .file(let p, _, _, _): return !opts.omit.contains(p)
                    case .extra: return true
                    }
                }
                let c = opts.compression[min(i, opts.compression.count - 1)]
                if i == 1, let extra = opts.extraFile {
                    // Streamed to a temp file so the test of a big layer never holds it in memory.
                    let (d, diff, size, file) = try bigLayer(entries, extra: extra, compression: c, near: path)
                    extraBlob = (d, file)
                    layers.append(
                        Layer(compressed: [], diffID: diff, mediaType: MediaType.ociLayerType(c), uncompressed: nil))
                    layerDigests.append(d)
                    _ = size
                    continue
                }
                let tar = MemorySink()
                let tw = TarWriter(sink: tar, mtime: mtime)
                for e in entries { try add(e, to: tw) }
                try tw.finish()
                let out = MemorySink()
                let cs = try CompressingSink(c, next: out)
                try cs.write(tar.bytes)
                try cs.finish()
                let d = Digester.digest(out.bytes)
                blobs[d] = out.bytes
                layers.append(
                    Layer(
                        compressed: out.bytes, diffID: Digester.digest(tar.bytes), mediaType: MediaType.ociLayerType(c),
                        uncompressed: tar.bytes))
                layerDigests.append(d)
            }
            let config = configJSON(platform, diffIDs: layers.map(\.diffID))
            let cbytes = JSONValue.encode(config)
            let cd = Digester.digest(cbytes)
            blobs[cd] = cbytes
            configs.append((cd, cbytes, layers, layerDigests))
            var layerDescs: [JSONValue] = []
            for (l, d) in zip(layers, layerDigests) {
                let size = l.uncompressed == nil ? (extraBlob?.file.written ?? 0) : Int64(l.compressed.count)
                layerDescs.append(Descriptor(mediaType: l.mediaType, digest: d, size: size).json)
            }
            let manifest: JSONValue = .object([
                ("schemaVersion", JSONValue(2)), ("mediaType", .string(MediaType.ociManifest)),
                ("config", Descriptor(mediaType: MediaType.ociConfig, digest: cd, size: Int64(cbytes.count)).json),
                ("layers", .array(layerDescs)),
            ])
            let mbytes = JSONValue.encode(manifest)
            let md = Digester.digest(mbytes)
            blobs[md] = mbytes
            manifests.append(
                Descriptor(mediaType: MediaType.ociManifest, digest: md, size: Int64(mbytes.count), platform: platform))
        }
        if opts.attestations {
            for m in manifests {
                let statement = JSONValue.encode(
                    .object([
                        ("_type", .string("https://in-toto.io/Statement/v0.1")),
                        (
                            "subject",
                            .array([.object([("digest", .object([("sha256", .string(Digest.hex(m.digest)))]))])])
                        ),
                    ]))
                let sd = Digester.digest(statement)
                blobs[sd] = statement
                let cfg = JSONValue.encode(
                    .object([
                        ("architecture", .string("unknown")), ("os", .string("unknown")),
                        ("config", .object([])),
                        ("rootfs", .object([("type", .string("layers")), ("diff_ids", .array([.string(sd)]))])),
                    ]))
                let cfgd = Digester.digest(cfg)
                blobs[cfgd] = cfg
                let am = JSONValue.encode(
                    .object([
                        ("schemaVersion", JSONValue(2)), ("mediaType", .string(MediaType.ociManifest)),
                        (
                            "config",
                            Descriptor(mediaType: MediaType.ociConfig, digest: cfgd, size: Int64(cfg.count)).json
                        ),
                        (
                            "layers",
                            .array([
                                Descriptor(
                                    mediaType: "application/vnd.in-toto+json", digest: sd, size: Int64(statement.count),
                                    annotations: ["in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2"]
                                ).json
                            ])
                        ),
                    ]))
                let amd = Digester.digest(am)
                blobs[amd] = am
                manifests.append(
                    Descriptor(
                        mediaType: MediaType.ociManifest, digest: amd, size: Int64(am.count),
                        platform: Platform(os: "unknown", architecture: "unknown"),
                        annotations: [
                            "vnd.docker.reference.digest": m.digest,
                            "vnd.docker.reference.type": "attestation-manifest",
                        ]))
            }
        }

        var layoutIndex: JSONValue
        let refAnnotations = [AnnotationKey.refName: opts.tag]
        if manifests.count == 1 && !opts.nested {
            var d = manifests[0]
            d.annotations = refAnnotations
            layoutIndex = ImageWriter.layoutIndex(d)
        } else {
            let index: JSONValue = .object([
                ("schemaVersion", JSONValue(2)), ("mediaType", .string(MediaType.ociIndex)),
                ("manifests", .array(manifests.map(\.json))),
            ])
            let ibytes = JSONValue.encode(index)
            let id = Digester.digest(ibytes)
            if opts.nested {
                blobs[id] = ibytes
                layoutIndex = ImageWriter.layoutIndex(
                    Descriptor(
                        mediaType: MediaType.ociIndex, digest: id, size: Int64(ibytes.count),
                        annotations: refAnnotations))
            } else {
                layoutIndex = index
            }
        }

        switch format {
        case .oci, .ociArchive, .dockerArchiveOCI:
            // Through the destinations a build writes to (the first platform's image for
            // Docker's manifest.json, in the Docker 25 form only).
            var locations = blobs.mapValues { (size: Int64($0.count), location: BlobLocation.memory($0)) }
            if let (d, f) = extraBlob {
                let rf = try ReadableFile(f.path)
                locations[d] = (rf.size, .file(rf, offset: 0, length: rf.size))
            }
            var tops = (layoutIndex["manifests"]?.arrayValue ?? []).map { Descriptor(json: $0) }
            var image = OutputImage(
                top: tops.removeFirst(), blobs: locations,
                dockerImages: format == .dockerArchiveOCI
                    ? [(opts.platforms[0].description, configs[0].digest, configs[0].layerDigests)] : [])
            image.repoTags = format == .dockerArchiveOCI ? ["mintplexlabs/anything-llm:\(opts.tag)"] : []
            image.moreTops = tops
            image.ownBlobs = Set(blobs.keys)
            let reference: ImageReference =
                format == .oci ? .ociLayout(path: path, ref: nil) : .ociArchive(path: path, ref: nil)
            _ = try reference.destination().write(
                image, created: Timestamp(epoch: mtime), reserved: nil, sync: false, diagnostics: .silent)
        case .dockerArchive:
            let c = configs[0]
            let out = try WritableFile.temporary(beside: path)
            let tw = TarWriter(sink: out, mtime: mtime)
            var layerPaths: [String] = []
            var parent = ""
            for l in c.layers {
                let id = Digester.hex(Array((parent + l.diffID).utf8))
                parent = id
                try tw.begin(.init(path: id, kind: .directory, mode: 0o755))
                try tw.addFile(id + "/VERSION", Array("1.0".utf8))
                try tw.addFile(id + "/json", JSONValue.encode(.object([("id", .string(id))])))
                try tw.addFile(id + "/layer.tar", l.uncompressed ?? [])
                layerPaths.append(id + "/layer.tar")
            }
            try tw.addFile(Digest.hex(c.digest) + ".json", c.bytes)
            let m: JSONValue = .array([
                .object([
                    ("Config", .string(Digest.hex(c.digest) + ".json")),
                    ("RepoTags", .array([.string("mintplexlabs/anything-llm:\(opts.tag)")])),
                    ("Layers", .array(layerPaths.map { .string($0) })),
                ])
            ])
            try tw.addFile("manifest.json", JSONValue.encode(m))
            try tw.addFile(
                "repositories",
                JSONValue.encode(.object([("mintplexlabs/anything-llm", .object([(opts.tag, .string(parent))]))])))
            try tw.finish()
            try out.commit(to: path)
        }
    }

    enum SampleEntry { case dir(String, uid: Int), file(String, String, mode: UInt32, uid: Int), extra(String) }

    static func add(_ e: SampleEntry, to tw: TarWriter) throws {
        switch e {
        case let .dir(p, uid): try tw.begin(.init(path: p, kind: .directory, mode: 0o755, uid: uid, gid: uid))
        case let .file(p, text, mode, uid): try tw.addFile(p, Array(text.utf8), mode: mode, uid: uid, gid: uid)
        case let .extra(src):
            let f = try ReadableFile(src)
            try tw.begin(
                .init(path: "app/server/storage/blob.bin", kind: .file, mode: 0o644, size: f.size, uid: 1000, gid: 1000)
            )
            _ = try copyStream(from: f.section(offset: 0, length: f.size), to: TarDataSink(tw))
        }
    }

    static func bigLayer(_ entries: [SampleEntry], extra: String, compression: Compression, near: String) throws -> (
        String, String, Int64, WritableFile
    ) {
        let file = try WritableFile.temporary(beside: near)
        let comp = DigestingSink(file)
        let cs = try CompressingSink(compression, next: comp)
        let un = DigestingSink(cs)
        let tw = TarWriter(sink: un, mtime: mtime)
        for e in entries + [.extra(extra)] { try add(e, to: tw) }
        try tw.finish()
        try cs.finish()
        try file.finish()
        return (comp.digester.finalizeDigest(), un.digester.finalizeDigest(), comp.count, file)
    }

    /// OS-like, app and clean-up layers; the last has a whiteout and an opaque directory.
    static func layerContents(_ p: Platform) -> [[SampleEntry]] {
        let os: [SampleEntry] = [
            .dir("app", uid: 1000),
            .file("app/old-notes.txt", "removed by a later layer\n", mode: 0o644, uid: 1000),
            .dir("app/cache", uid: 1000),
            .file("app/cache/stale.txt", "hidden by an opaque directory\n", mode: 0o644, uid: 1000),
            .dir("bin", uid: 0),
            .file("bin/sh", "#!stand-in for dash (\(p))\n", mode: 0o755, uid: 0),
            .dir("etc", uid: 0),
            .file(
                "etc/passwd", "root:x:0:0:root:/root:/bin/bash\nanythingllm:x:1000:1000::/home/anythingllm:/bin/bash\n",
                mode: 0o644, uid: 0),
            .file("etc/group", "root:x:0:\nanythingllm:x:1000:\n", mode: 0o644, uid: 0),
            .file(
                "etc/os-release", "PRETTY_NAME=\"Ubuntu 24.04 LTS (sample)\"\nID=ubuntu\nVERSION_CODENAME=noble\n",
                mode: 0o644, uid: 0),
            .file("etc/stamp-sample-arch", "\(p)\n", mode: 0o644, uid: 0),
            .dir("usr", uid: 0), .dir("usr/bin", uid: 0),
            .file("usr/bin/curl", "#!stand-in for curl\n", mode: 0o755, uid: 0),
            .dir("usr/local", uid: 0), .dir("usr/local/bin", uid: 0),
            .file(
                "usr/local/bin/docker-healthcheck.sh",
                "#!/bin/bash\nresponse=$(curl --write-out '%{http_code}' --silent --output /dev/null "
                    + "http://localhost:${SERVER_PORT:-3001}/api/ping)\nif [ $response -eq 200 ]; then echo \"Server "
                    + "is up\"; exit 0; else exit 1; fi\n",
                mode: 0o755, uid: 0),
        ]
        let app: [SampleEntry] = [
            .dir("app/server", uid: 1000),
            .file("app/server/.env", "SERVER_PORT=3001\n", mode: 0o644, uid: 1000),
            .file("app/server/index.js", "require('./utils/boot');\n", mode: 0o644, uid: 1000),
            .dir("app/server/public", uid: 1000),
            .file(
                "app/server/public/_index.html",
                "<!doctype html><html><head><link rel=\"stylesheet\" href=\"/index.css\"></head><body><div "
                    + "id=\"root\"></div><script type=\"module\" src=\"/index.js\"></script></body></html>\n",
                mode: 0o644, uid: 1000),
            .file(
                "app/server/public/index.js", "import('./assets/index-3f9a1c0b.js');console.log('anything-llm');\n",
                mode: 0o644, uid: 1000),
            .file(
                "app/server/public/index.css",
                "body{background:url(./favicon.png)}.logo{background:url(./assets/logo.png)}\n", mode: 0o644, uid: 1000),
            .file("app/server/public/favicon.png", "PNG\n", mode: 0o644, uid: 1000),
            .file("app/server/public/robots.txt", "User-agent: *\n", mode: 0o644, uid: 1000),
            .file(
                "app/server/public/manifest.json",
                "{\"name\":\"AnythingLLM\",\"icons\":[{\"src\":\"/favicon.png\"}]}\n", mode: 0o644, uid: 1000),
            .dir("app/server/public/assets", uid: 1000),
            .file("app/server/public/assets/logo.png", "\u{89}PNG logo\n", mode: 0o644, uid: 1000),
            .file(
                "app/server/public/assets/index-3f9a1c0b.js", "import '../index.js';export const chunk=1;\n",
                mode: 0o644, uid: 1000),
            .dir("app/server/utils", uid: 1000), .dir("app/server/utils/boot", uid: 1000),
            .file(
                "app/server/utils/boot/MetaGenerator.js",
                "module.exports=`<script src=\"/index.js\"></script><link href=\"/index.css\">`;\n", mode: 0o644,
                uid: 1000),
        ]
        let cleanup: [SampleEntry] = [
            .file("app/.wh.old-notes.txt", "", mode: 0o644, uid: 0),
            .dir("app/cache", uid: 1000),
            .file("app/cache/.wh..wh..opq", "", mode: 0o644, uid: 0),
            .file("app/cache/fresh.txt", "after the opaque directory\n", mode: 0o644, uid: 1000),
        ]
        return [os, app, cleanup]
    }

    /// A config like the published image's: Healthcheck, Shell, OnBuild, container_config,
    /// a vendor key with numbers in unusual spellings, history with empty layers.
    static func configJSON(_ p: Platform, diffIDs: [String]) -> JSONValue {
        func h(_ by: String, empty: Bool = false) -> JSONValue {
            var e: JSONValue = .object([("created", .string(created)), ("created_by", .string(by))])
            if empty { e["empty_layer"] = .bool(true) }
            return e
        }
        var c: JSONValue = .object([
            ("architecture", .string(p.architecture)), ("os", .string(p.os)), ("created", .string(created)),
            (
                "config",
                .object([
                    ("User", .string("anythingllm")),
                    (
                        "Env",
                        .array(
                            [
                                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                                "NODE_ENV=production",
                                "ANYTHING_LLM_RUNTIME=docker", "DEPLOYMENT_VERSION=1.16.0",
                            ].map { .string($0) })
                    ),
                    ("WorkingDir", .string("/app")),
                    ("Entrypoint", .array([.string("/bin/bash"), .string("/usr/local/bin/docker-entrypoint.sh")])),
                    (
                        "Healthcheck",
                        .object([
                            (
                                "Test",
                                .array([
                                    .string("CMD-SHELL"),
                                    .string("/bin/bash /usr/local/bin/docker-healthcheck.sh || exit 1"),
                                ])
                            ),
                            ("Interval", .number("60000000000")), ("Timeout", .number("10000000000")),
                            ("StartPeriod", .number("60000000000")),
                        ])
                    ),
                    ("Shell", .array([.string("/bin/bash"), .string("-c")])),
                    ("OnBuild", .null),
                    (
                        "Labels",
                        .object([
                            (
                                "org.opencontainers.image.source",
                                .string("https://github.com/Mintplex-Labs/anything-llm")
                            )
                        ])
                    ),
                ])
            ),
            (
                "container_config",
                .object([
                    ("Hostname", .string("")),
                    ("Cmd", .array([.string("/bin/sh"), .string("-c"), .string("#(nop) HEALTHCHECK")])),
                ])
            ),
            (
                "x-vendor.example",
                .object([("keep", .array([.number("1"), .number("2.50"), .number("1e3"), .number("-0")]))])
            ),
            ("rootfs", .object([("type", .string("layers")), ("diff_ids", .array(diffIDs.map { .string($0) }))])),
            (
                "history",
                .array([
                    h("ARG TARGETARCH=\(p.architecture)", empty: true), h("ADD ubuntu-noble-rootfs.tar /"),
                    h("ENV NODE_ENV=production", empty: true),
                    h("COPY --chown=anythingllm:anythingllm ./server /app/server"),
                    h("RUN rm /app/old-notes.txt && rm -rf /app/cache/*"),
                    h(
                        "HEALTHCHECK &{[\"CMD-SHELL\" \"/bin/bash /usr/local/bin/docker-healthcheck.sh || exit 1\"]}",
                        empty: true),
                ])
            ),
        ])
        if let v = p.variant { c["variant"] = .string(v) }
        return c
    }
}
