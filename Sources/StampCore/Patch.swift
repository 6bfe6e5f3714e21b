import OCI

/// Lossless edits of the base's documents (DESIGN §5): every key stamp does not own is kept.
public enum Patch {
    /// `kv` set on `obj`; every key stamp owns that `kv` does not set is removed (a re-stamp
    /// without a revision must not keep the previous build's).
    static func merge(_ obj: JSONValue?, _ kv: [(String, String)], removing owned: Set<String> = StampPlan.ownedKeys)
        -> JSONValue
    {
        var o: JSONValue = (obj?.isObject ?? false) ? obj! : .object([])
        let setting = Set(kv.map(\.0))
        if case .object(let pairs) = o, pairs.contains(where: { owned.contains($0.0) && !setting.contains($0.0) }) {
            o = .object(pairs.filter { !owned.contains($0.0) || setting.contains($0.0) })
        }
        for (k, v) in kv { o[k] = .string(v) }
        return o
    }

    /// The new config: the stamp's labels, env and Healthcheck, `created`, history and
    /// `rootfs.diff_ids`.
    public static func config(
        _ base: JSONValue, stamp: Stamp, layer: BuiltLayer?, historyText: String,
        removing owned: Set<String> = StampPlan.ownedKeys
    ) -> JSONValue {
        var c = base
        // The stamp's keys of a container config: labels, env, Healthcheck.
        func patched(_ obj: JSONValue?) -> JSONValue {
            var inner: JSONValue = (obj?.isObject ?? false) ? obj! : .object([])
            inner["Labels"] = merge(inner["Labels"], stamp.labels, removing: owned)
            var env = (inner["Env"]?.arrayValue ?? []).compactMap { $0.stringValue }
            let setting = Set(stamp.env.map(\.0))
            env.removeAll { e in
                let k = e.split(separator: "=", maxSplits: 1).first.map(String.init) ?? e
                return Stamp.Env.owned.contains(k) && !setting.contains(k)
            }
            for (k, v) in stamp.env {
                let entry = "\(k)=\(v)"
                if let i = env.firstIndex(where: { $0 == k || $0.hasPrefix(k + "=") }) {
                    env[i] = entry
                } else {
                    env.append(entry)
                }
            }
            inner["Env"] = .array(env.map { .string($0) })
            if let h = stamp.healthcheck { inner["Healthcheck"] = h.json }
            return inner
        }
        c["config"] = patched(c["config"])
        // Docker's legacy copy (`buildah commit --format docker` and old `docker commit` write
        // one): podman 4.3 reads its Healthcheck, so every key stamp owns agrees in both.
        if c["container_config"]?.isObject == true { c["container_config"] = patched(c["container_config"]) }
        c["created"] = .string(stamp.created.rfc3339)

        var entry: JSONValue = .object([
            ("created", .string(stamp.created.rfc3339)), ("created_by", .string(historyText)),
            ("comment", .string("stamp \(StampVersion.current)")),
        ])
        if let layer {
            var rootfs: JSONValue =
                (c["rootfs"]?.isObject ?? false) ? c["rootfs"]! : .object([("type", .string("layers"))])
            rootfs["diff_ids"] = .array((rootfs["diff_ids"]?.arrayValue ?? []) + [.string(layer.diffID)])
            c["rootfs"] = rootfs
        } else {
            entry["empty_layer"] = .bool(true)
        }
        // Keep the history in step with the layers: append only when the base keeps one.
        if let h = c["history"]?.arrayValue {
            c["history"] = .array(h + [entry])
        } else if (c["rootfs"]?["diff_ids"]?.arrayValue?.count ?? 0) == (layer == nil ? 0 : 1) {
            c["history"] = .array([entry])
        }
        return c
    }

    /// The new manifest: OCI media types (a Docker v2 manifest becomes OCI), new config, the stamp
    /// layer appended, annotations merged.
    public static func manifest(
        _ base: JSONValue, config: Descriptor, layer: BuiltLayer?, annotations: [(String, String)],
        format: ImageFormat = .oci, removing owned: Set<String> = StampPlan.ownedKeys
    ) -> JSONValue {
        var m = base
        m["mediaType"] = .string(format.manifest)
        var cd = Descriptor(json: m["config"] ?? .object([]))
        cd.mediaType = format.config
        cd.digest = config.digest
        cd.size = config.size
        m["config"] = cd.json
        var layers = (m["layers"]?.arrayValue ?? []).map { j -> JSONValue in
            var d = Descriptor(json: j)
            d.mediaType = format.layer(d.mediaType)
            return d.json
        }
        if let layer {
            var d = layer.descriptor
            d.mediaType = format.layer(d.mediaType)
            layers.append(d.json)
        }
        m["layers"] = .array(layers)
        // Docker's schema 2 has no annotations: the stamp is in the config's labels.
        if format.hasAnnotations { m["annotations"] = merge(m["annotations"], annotations, removing: owned) }
        return m
    }

    /// The manifest a `docker save` archive implies (it stores none): how stamp reads such an
    /// archive and what it writes one for, so the digest a build reports for it is the one
    /// `stamp verify` and `stamp push` of that file find.
    public static func dockerArchiveManifest(config: Descriptor, layers: [Descriptor]) -> JSONValue {
        .object([
            ("schemaVersion", JSONValue(2)),
            ("mediaType", .string(MediaType.dockerManifest)),
            ("config", Descriptor(mediaType: MediaType.dockerConfig, digest: config.digest, size: config.size).json),
            (
                "layers",
                .array(
                    layers.map {
                        Descriptor(mediaType: ImageFormat.docker.layer($0.mediaType), digest: $0.digest, size: $0.size)
                            .json
                    })
            ),
        ])
    }

    /// The new index: the stamped manifests in the base's order, attestations dropped.
    public static func index(
        _ base: JSONValue, manifests: [Descriptor], annotations: [(String, String)],
        format: ImageFormat = .oci, removing owned: Set<String> = StampPlan.ownedKeys
    ) -> JSONValue {
        var i = base
        i["mediaType"] = .string(format.index)
        i["schemaVersion"] = JSONValue(2)
        i["manifests"] = .array(manifests.map(\.json))
        if format.hasAnnotations { i["annotations"] = merge(i["annotations"], annotations, removing: owned) }
        return i
    }
}
