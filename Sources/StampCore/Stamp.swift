import OCI

/// What a stamp means: the labels, annotations, env, Healthcheck and history entry a stamped
/// image carries, derived once from the plan and the base it stamps. `stamp build` writes them
/// into the config and manifests (`Patch`), `stamp dockerfile` into LABEL, ENV and HEALTHCHECK
/// lines (`DockerfileRenderer`), and `stamp verify` reads the same keys back (`Stamp.Env`,
/// `AnnotationKey`), so the three cannot drift apart.
public struct Stamp: Sendable {
    /// The env variables stamp owns.
    public enum Env {
        public static let version = "IMAGE_VERSION"
        public static let created = "IMAGE_CREATED"
        public static let revision = "IMAGE_REVISION"
        public static let owned: Set<String> = [version, created, revision]
    }

    /// The OCI keys stamp owns, in the order it writes them: version, created, base digest,
    /// revision, source, base name (those that have a value).
    public let keys: [(String, String)]
    /// The config's labels: `keys`, then `--label`, then where version.json is.
    public let labels: [(String, String)]
    /// The manifests' and the index's annotations: `keys`, then `--annotation` (the ones given
    /// for one level are added by that level's writer).
    public let annotations: [(String, String)]
    /// The config's env: IMAGE_VERSION, IMAGE_CREATED, IMAGE_REVISION, then `--env`.
    public let env: [(String, String)]
    /// The config's `Healthcheck`, when the plan has one.
    public let healthcheck: HealthPlan?
    /// What the history entry's `created` and the top descriptor say.
    public let created: Timestamp
    public let version: String

    public init(plan: StampPlan, baseName: String?, baseDigest: String) {
        var kv: [(String, String)] = [
            (AnnotationKey.version, plan.version), (AnnotationKey.created, plan.created.rfc3339),
        ]
        if !baseDigest.isEmpty { kv.append((AnnotationKey.baseDigest, baseDigest)) }
        if let r = plan.revision { kv.append((AnnotationKey.revision, r)) }
        if let s = plan.source { kv.append((AnnotationKey.source, s)) }
        if let n = baseName { kv.append((AnnotationKey.baseName, n)) }
        keys = kv
        var labels = kv + plan.labels
        if let p = plan.versionJSON { labels.append((AnnotationKey.stampVersionJSON, p)) }
        self.labels = labels
        annotations = kv + plan.annotations
        var env: [(String, String)] = [(Env.version, plan.version), (Env.created, plan.created.rfc3339)]
        if let r = plan.revision { env.append((Env.revision, r)) }
        self.env = env + plan.env
        healthcheck = plan.health
        created = plan.created
        version = plan.version
    }

    /// The history entry's `created_by` for a layer of `files` (image paths; none: a stamp of
    /// labels and env only).
    public func historyText(files: [String]) -> String {
        var text = "stamp build --version \(version): "
        if files.isEmpty {
            text += "labels and env only"
        } else if files.count > 8 {
            text += files.prefix(6).map { "/" + $0 }.joined(separator: " ") + " and \(files.count - 6) more files"
        } else {
            text += files.map { "/" + $0 }.joined(separator: " ")
        }
        return text
    }

    /// The top descriptor's annotations (of an OCI layout's `index.json`).
    public var topAnnotations: [String: String] {
        [AnnotationKey.version: version, AnnotationKey.created: created.rfc3339]
    }
}
