import Foundation
import Hashing
import OCI
import Yams

/// Which traffic layer splits requests between the two versions; each has its rules in one
/// conformance of `MeshRules` (render, edit, check).
public enum Mesh: String, CaseIterable, Sendable {
    /// A `VirtualService` bound to the ingress Gateway and the mesh (header route, sticky
    /// routes, then weights) over `DestinationRule` subsets by `track`, one Service.
    case istio
    /// An `HTTPRoute` (header rule, sticky rules, weighted rule), one Service per track.
    case gatewayAPI = "gateway-api"
    /// An Argo Rollouts `Rollout` (canary steps, Istio traffic routing) instead of two Deployments.
    case argoRollouts = "argo-rollouts"

    var rules: any MeshRules.Type {
        switch self {
        case .istio: return IstioRules.self
        case .gatewayAPI: return GatewayAPIRules.self
        case .argoRollouts: return ArgoRules.self
        }
    }
}

/// Where the canary's data comes from: an empty claim, or a clone of the stable's.
public enum CanaryStorage: String, CaseIterable, Sendable { case fresh, clone }

/// How Kubernetes judges readiness: the stamped health-check script, or HTTP on the ping path.
public enum ProbeKind: String, CaseIterable, Sendable { case exec, http }

/// A claim's access mode: one node (`ReadWriteOnce`) or one pod (`ReadWriteOncePod`, which
/// the API server enforces: a second writer of the SQLite file cannot start).
public enum AccessMode: String, CaseIterable, Sendable {
    case readWriteOnce = "ReadWriteOnce"
    case readWriteOncePod = "ReadWriteOncePod"
}

/// `--gateway NAMESPACE/NAME[:SECTION]`: the Gateway a route attaches to, or `mesh` alone
/// (Istio: in-mesh callers only, on purpose).
public struct GatewayRef: Sendable, Equatable {
    public var namespace: String?
    public var name: String
    public var section: String?

    public init(namespace: String?, name: String, section: String? = nil) {
        self.namespace = namespace
        self.name = name
        self.section = section
    }

    /// Istio's in-mesh pseudo-gateway: the route applies to sidecars only.
    public static let mesh = GatewayRef(namespace: nil, name: "mesh")

    public static func parse(_ text: String) throws -> GatewayRef {
        if text == "mesh" { return .mesh }
        var rest = Substring(text)
        var section: String?
        if let colon = rest.lastIndex(of: ":") {
            section = String(rest[rest.index(after: colon)...])
            rest = rest[..<colon]
        }
        var namespace: String?
        if let slash = rest.firstIndex(of: "/") {
            namespace = String(rest[..<slash])
            rest = rest[rest.index(after: slash)...]
        }
        let g = GatewayRef(namespace: namespace, name: String(rest), section: section)
        if let namespace { try Labels.checkName(namespace, what: "--gateway's namespace") }
        try Labels.checkName(g.name, what: "--gateway's name", subdomain: true)
        if let section { try Labels.checkName(section, what: "--gateway's section (listener name)", subdomain: true) }
        return g
    }

    /// Istio's form: `NAMESPACE/NAME` (a section has no Istio equivalent).
    var istio: String { namespace.map { "\($0)/\(name)" } ?? name }
    var isMesh: Bool { name == "mesh" && namespace == nil }
}

/// Everything a canary folder is rendered from.
public struct CanarySpec: Sendable {
    public var app = "anything-llm"
    public var namespace: String?
    public var host: String
    public var weight: Int
    public var headerName = "x-canary-flag"
    public var headerValue = "enabled"
    /// The header value came from a file (a secret): never printed.
    public var headerIsSecret = false
    public var mesh: Mesh = .istio
    public var stableReplicas = 1
    public var canaryReplicas = 1
    public var storage: CanaryStorage
    public var storageSize = "10Gi"
    public var storageClass: String?
    public var accessMode: AccessMode = .readWriteOnce
    /// What the app needs (from the canary's stamp record, else the stable's, else the profile).
    public var facts: AppFacts = .anythingLLM
    /// nil: exec when the image has the stamped script, else HTTP.
    public var probe: ProbeKind?
    /// Seconds the app may take to start (migrations) before the kubelet kills it.
    public var startupBudget = 300
    /// The one Secret both versions read their identity keys from.
    public var identitySecret: String?
    /// The Gateway the route binds to; Istio also binds to `mesh`.
    public var gateway: GatewayRef?
    /// A client that got one version keeps it (a cookie, matched before the weights).
    public var sticky = true
    /// A fresh canary of an app whose auth lives in its database may run without the auth key.
    public var allowOpenCanary = false
    /// A NetworkPolicy admitting only the gateway's namespace and the app's own.
    public var networkPolicy = true
    /// Argo Rollouts: Prometheus' address for the background analysis (none without it).
    public var prometheus: String?
    public var memoryRequest: String?
    public var memoryLimit: String?
    public var cpuRequest: String?
    public var cpuLimit: String?
    public var stable: ReleaseImage
    public var canary: ReleaseImage

    public init(host: String, weight: Int, storage: CanaryStorage, stable: ReleaseImage, canary: ReleaseImage) {
        self.host = host
        self.weight = weight
        self.storage = storage
        self.stable = stable
        self.canary = canary
        if let f = canary.facts ?? stable.facts { facts = f }
    }

    var secretName: String { identitySecret ?? "\(app)-identity" }

    /// The app keeps state: its pods need a claim of their own.
    var stateful: Bool { facts.storagePath != nil }

    /// The auth key is required in the Secret: a fresh canary of an app whose users live in its
    /// database would otherwise accept every request.
    var authRequired: Bool {
        facts.authInDatabase && storage == .fresh && !allowOpenCanary && facts.authKey != nil
    }

    /// Refuses what would render a canary that is unsafe or that the cluster refuses.
    public func validate() throws {
        try Labels.checkName(app, what: "--app", room: "-canary-".count + Claims.slugRoom)
        if let namespace { try Labels.checkName(namespace, what: "--namespace") }
        try Labels.checkName(secretName, what: "--identity-secret", subdomain: true)
        guard (0...100).contains(weight) else { throw CanaryError.usage("--weight \(weight): a percentage, 0 to 100") }
        guard stableReplicas >= 0, canaryReplicas >= 0, stableReplicas <= 1000, canaryReplicas <= 1000 else {
            throw CanaryError.usage("--replicas: counts of 0 to 1000")
        }
        if stateful && (stableReplicas > 1 || canaryReplicas > 1) {
            throw CanaryError.usage(
                "--replicas \(stableReplicas):\(canaryReplicas): \(facts.profile) keeps its data in one folder "
                    + "(\(facts.storagePath ?? "")) on a \(accessMode.rawValue) claim; a second pod on another node "
                    + "stays Pending and two processes would write one SQLite file. Run 1:1 (0 to stop one)")
        }
        try Hosts.check(host)
        // What the API server would refuse at apply time is refused here.
        guard
            storageSize.range(of: #"^[0-9]+(\.[0-9]+)?(k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$"#, options: .regularExpression)
                != nil
        else {
            throw CanaryError.usage("--storage-size \(storageSize.prefix(40)): a Kubernetes quantity like 10Gi or 500M")
        }
        if let storageClass { try Labels.checkName(storageClass, what: "--storage-class", subdomain: true) }
        guard !headerName.isEmpty, headerName.utf8.allSatisfy({ Labels.isAlnum($0) || $0 == 45 }) else {
            throw CanaryError.usage("--header \"\(headerName)\": a header name is letters, digits and '-'")
        }
        guard !headerValue.isEmpty, headerValue.utf8.allSatisfy({ (0x21...0x7e).contains($0) }) else {
            throw CanaryError.usage("--header: the value must be printable ASCII without spaces")
        }
        guard stable.version != canary.version else {
            throw CanaryError.usage(
                "--stable and --canary are both version \(stable.version): the two must differ (labels, metrics and "
                    + "the sticky cookie tell them apart by version)")
        }
        if stable.reference == canary.reference {
            throw CanaryError.usage("--stable and --canary are the same image (\(stable.reference))")
        }
        if mesh == .gatewayAPI && (gateway == nil || gateway!.isMesh) {
            throw CanaryError.usage(
                "--mesh gateway-api: name the Gateway the route attaches to: --gateway NAMESPACE/NAME[:SECTION]")
        }
        if mesh != .gatewayAPI && gateway == nil {
            throw CanaryError.usage(
                "--mesh \(mesh.rawValue): name the ingress Gateway (--gateway NAMESPACE/NAME): without it the "
                    + "VirtualService applies to in-mesh callers only and the ingress never splits; --gateway mesh "
                    + "says that is what you want")
        }
        if probe == .exec && facts.healthScript == nil {
            throw CanaryError.usage(
                "--probe exec: the image has no stamped health-check script (profile \(facts.profile)); use --probe "
                    + "http")
        }
        if facts.port == nil {
            throw CanaryError.usage("the app's port is not known (no stamp record says it): give --health-port")
        }
        if (probe ?? defaultProbe) == .http && facts.healthPath == nil {
            throw CanaryError.usage("the app's health path is not known: give --health-path (e.g. /healthz)")
        }
        if let p = prometheus {
            guard mesh == .argoRollouts else {
                throw CanaryError.usage(
                    "--prometheus: the background analysis is Argo Rollouts' (--mesh argo-rollouts)")
            }
            guard p.hasPrefix("http://") || p.hasPrefix("https://"), !p.contains("@"), !p.contains(" ") else {
                throw CanaryError.usage("--prometheus \(p): an http:// or https:// address, no credentials in it")
            }
        }
        guard (10...86_400).contains(startupBudget) else {
            throw CanaryError.usage("--startup-budget: between 10s and 24h")
        }
    }

    var defaultProbe: ProbeKind { facts.healthScript == nil ? .http : .exec }

    // MARK: - Rendering

    /// Every file name `render` may write besides kustomization.yaml, whatever the mesh.
    public static let fileNames: Set<String> = [
        "deployment-stable.yaml", "deployment-canary.yaml", "storage-stable.yaml", "storage-canary.yaml",
        "service.yaml", "destinationrule.yaml", "virtualservice.yaml", "service-stable.yaml", "service-canary.yaml",
        "httproute.yaml", "rollout.yaml", "networkpolicy.yaml", "analysistemplate.yaml",
    ]

    /// The files of the folder, by name, in the order kustomization.yaml lists them; `keeping`:
    /// resources of a user's own that kustomization.yaml lists after stamp's.
    public func render(keeping extra: [String] = []) throws -> [(name: String, docs: [Node])] {
        try validate()
        var files = mesh.rules.files(self)
        if networkPolicy { files.append(("networkpolicy.yaml", [Workloads.networkPolicy(self)])) }
        var kustomization: [(String, Node?)] = [
            ("apiVersion", Y.str("kustomize.config.k8s.io/v1beta1")), ("kind", Y.str("Kustomization")),
        ]
        if let namespace { kustomization.append(("namespace", Y.str(namespace))) }
        kustomization.append(("resources", Y.seq((files.map(\.0) + extra).map(Y.str))))
        return [("kustomization.yaml", [Y.map(kustomization)])] + files
    }

    enum Track: String { case stable, canary }

    func image(_ t: Track) -> ReleaseImage { t == .stable ? stable : canary }
}

/// Claim names: the stable's keeps one name for its life (the production data); each canary
/// gets a name of its own from its version and storage mode, so rendering the next canary
/// never changes an existing claim (a claim's spec is immutable) nor reuses the last one's data.
enum Claims {
    /// `-` + at most 20 characters of the version + `-` + 8 hex digits.
    static let slugRoom = 30

    static func stable(_ app: String) -> String { "\(app)-stable-storage" }

    static func canary(_ app: String, version: String, storage: CanaryStorage) -> String {
        "\(app)-canary-\(slug(version, storage.rawValue))"
    }

    /// Argo Rollouts: one claim per version (a version's ReplicaSet keeps it when promoted).
    static func version(_ app: String, _ version: String) -> String { "\(app)-data-\(slug(version, ""))" }

    static func slug(_ version: String, _ salt: String) -> String {
        var s = String(
            version.lowercased().map { c -> Character in c.isLetter && c.isASCII || c.isNumber && c.isASCII ? c : "-" })
        s = String(s.prefix(20))
        while s.hasSuffix("-") { s.removeLast() }
        while s.hasPrefix("-") { s.removeFirst() }
        let hex = Digester.hex(Array((version + "\u{0}" + salt).utf8)).prefix(8)
        return s.isEmpty ? String(hex) : "\(s)-\(hex)"
    }
}

/// Host names as routes take them: lower-case RFC 1123, a leading `*.` allowed.
enum Hosts {
    static func check(_ host: String) throws {
        if host != host.lowercased() {
            throw CanaryError.usage(
                "--host \"\(host)\": host names are lower-case in routes (the HTTPRoute CRD refuses others); use "
                    + "\(host.lowercased())")
        }
        let body = host.hasPrefix("*.") ? String(host.dropFirst(2)) : host
        let labels = body.split(separator: ".", omittingEmptySubsequences: false)
        let ok =
            !body.isEmpty && host.utf8.count <= 253
            && labels.allSatisfy { l in
                !l.isEmpty && l.utf8.count <= 63 && l.first != "-" && l.last != "-"
                    && l.utf8.allSatisfy { (97...122).contains($0) || (48...57).contains($0) || $0 == 45 }
            }
        guard ok else {
            throw CanaryError.usage(
                "--host \"\(host)\": a DNS name of lower-case letters, digits, '-' and '.' (ai.corp.local), "
                    + "optionally starting with *.")
        }
    }
}

/// The sticky cookie: `APP-version=VERSION`, set on the weighted routes' answers and matched
/// before the weights, so a client that got one version keeps it (Flagger's session affinity
/// does the same). Its value is the version, so after a promotion the stable's rule catches the
/// promoted canary's clients and an earlier cycle's cookie matches nothing.
enum Sticky {
    static func name(_ app: String) -> String { "\(app)-version" }
    static let maxAge = 86_400

    static func setCookie(_ app: String, _ version: String) -> String {
        "\(name(app))=\(version); Path=/; Max-Age=\(maxAge); HttpOnly; SameSite=Lax"
    }

    /// RE2 over the whole Cookie header: the cookie with exactly this value.
    static func regex(_ app: String, _ version: String) -> String {
        "^(.*; ?)?\(CanaryAnalysis.regexQuoted(name(app)))=\(CanaryAnalysis.regexQuoted(version))(;.*)?$"
    }
}

/// Annotations stamp keeps on a Rollout: the two versions it runs (Argo reads none of them).
enum RolloutKeys {
    static let stableImage = "stamp.dev/stable-image"
    static let stableVersion = "stamp.dev/stable-version"
    static let stableClaim = "stamp.dev/stable-claim"
    static let canaryImage = "stamp.dev/canary-image"
    static let canaryVersion = "stamp.dev/canary-version"
    static let canaryClaim = "stamp.dev/canary-claim"
}

/// Annotations on stamp's objects.
enum StampKeys {
    /// On a claim: fresh or clone.
    static let storage = "stamp.dev/canary-storage"
    /// On a workload: the auth key may be missing (--allow-open-canary).
    static let openCanary = "stamp.dev/allow-open-canary"
    /// On the VirtualService: bound to the mesh only, on purpose.
    static let meshOnly = "stamp.dev/mesh-only"
}
