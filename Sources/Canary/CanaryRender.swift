import Foundation
import Yams

/// Which traffic layer splits requests between the two versions.
public enum Mesh: String, CaseIterable, Sendable {
    /// A `VirtualService` (header route first, then weights) over `DestinationRule` subsets by
    /// `version`, one Service for both Deployments.
    case istio
    /// An `HTTPRoute` with a header-match rule and weighted `backendRefs`, one Service per track.
    case gatewayAPI = "gateway-api"
    /// An Argo Rollouts `Rollout` (canary steps, Istio traffic routing) instead of two Deployments.
    case argoRollouts = "argo-rollouts"
}

/// Where the canary's data comes from: an empty claim, or a clone of the stable's.
public enum CanaryStorage: String, CaseIterable, Sendable { case fresh, clone }

/// How Kubernetes probes the app: the stamped health-check script, or HTTP on the ping path.
public enum ProbeKind: String, CaseIterable, Sendable { case exec, http }

/// Everything a canary folder is rendered from.
public struct CanarySpec: Sendable {
    public var app = "anything-llm"
    public var namespace: String?
    public var host: String
    public var weight: Int
    public var headerName = "x-canary-flag"
    public var headerValue = "enabled"
    public var mesh: Mesh = .istio
    public var stableReplicas = 1
    public var canaryReplicas = 1
    public var storage: CanaryStorage
    public var storageSize = "10Gi"
    public var storageClass: String?
    /// The app's data folder (anything-llm: SQLite, documents, vector cache), `STORAGE_DIR`.
    public var storagePath = "/app/server/storage"
    public var port = 3001
    public var pingPath = "/api/ping"
    public var probe: ProbeKind = .exec
    public var healthScript = "/app/health-check-enhanced.sh"
    /// The image's Healthcheck timing, in seconds.
    public var interval = 30
    public var timeout = 10
    public var startPeriod = 60
    public var retries = 3
    /// The one Secret both versions read their identity keys from.
    public var identitySecret: String?
    public var identityKeys = ["JWT_SECRET", "SIG_KEY", "SIG_SALT"]
    /// Keys read when the Secret has them (`AUTH_TOKEN`: anything-llm's single-user password).
    public var optionalIdentityKeys = ["AUTH_TOKEN"]
    /// The Istio Gateway (`--mesh istio`, `argo-rollouts`) or Gateway API Gateway the route binds to.
    public var gateway: String?
    /// The group id the pod's volumes are writable by (anything-llm runs as uid/gid 1000).
    public var fsGroup = 1000
    public var stable: ReleaseImage
    public var canary: ReleaseImage

    public init(host: String, weight: Int, storage: CanaryStorage, stable: ReleaseImage, canary: ReleaseImage) {
        self.host = host
        self.weight = weight
        self.storage = storage
        self.stable = stable
        self.canary = canary
    }

    var secretName: String { identitySecret ?? "\(app)-identity" }

    /// Refuses what would render a canary that is unsafe or that the cluster refuses.
    public func validate() throws {
        try Labels.checkName(app, what: "--app", room: "-canary-storage".count)
        if let namespace { try Labels.checkName(namespace, what: "--namespace") }
        try Labels.checkName(secretName, what: "--identity-secret")
        guard (0...100).contains(weight) else { throw CanaryError.usage("--weight \(weight): a percentage, 0 to 100") }
        guard stableReplicas >= 0, canaryReplicas >= 0 else {
            throw CanaryError.usage("--replicas: counts of 0 or more")
        }
        guard !host.isEmpty, host.utf8.allSatisfy({ Labels.isAlnum($0) || ".-*".utf8.contains($0) }) else {
            throw CanaryError.usage("--host \"\(host)\": a host name (ai.corp.local)")
        }
        guard !headerName.isEmpty, headerName.utf8.allSatisfy({ Labels.isAlnum($0) || $0 == 45 }) else {
            throw CanaryError.usage("--header \"\(headerName)\": a header name is letters, digits and '-'")
        }
        guard stable.version != canary.version else {
            throw CanaryError.usage(
                "--stable and --canary are both version \(stable.version): the traffic split routes by version, so "
                    + "the two must differ")
        }
        if stable.reference == canary.reference {
            throw CanaryError.usage("--stable and --canary are the same image (\(stable.reference))")
        }
        if mesh == .argoRollouts && storage == .clone {
            throw CanaryError.usage(
                "--mesh argo-rollouts runs both versions from one pod template, so each pod gets its own claim from "
                    + "it and nothing can be cloned; --canary-storage clone needs two Deployments (istio or "
                    + "gateway-api)")
        }
        if mesh == .gatewayAPI && gateway == nil {
            throw CanaryError.usage("--mesh gateway-api: name the Gateway the route attaches to with --gateway NAME")
        }
    }

    // MARK: - Rendering

    /// Every file name `render` may write besides kustomization.yaml, whatever the mesh.
    public static let fileNames: Set<String> = [
        "deployment-stable.yaml", "deployment-canary.yaml", "storage-stable.yaml", "storage-canary.yaml",
        "service.yaml", "destinationrule.yaml", "virtualservice.yaml", "service-stable.yaml", "service-canary.yaml",
        "httproute.yaml", "rollout.yaml",
    ]

    /// The files of the folder, by name, in the order kustomization.yaml lists them; `keeping`:
    /// resources of a user's own that kustomization.yaml lists after stamp's.
    public func render(keeping extra: [String] = []) throws -> [(name: String, docs: [Node])] {
        try validate()
        var files: [(String, [Node])] = []
        switch mesh {
        case .istio, .gatewayAPI:
            files.append(("deployment-stable.yaml", [deployment(.stable)]))
            files.append(("deployment-canary.yaml", [deployment(.canary)]))
            files.append(("storage-stable.yaml", [claim(.stable)]))
            files.append(("storage-canary.yaml", [claim(.canary)]))
            if mesh == .istio {
                files.append(("service.yaml", [service(name: app, track: nil)]))
                files.append(("destinationrule.yaml", [destinationRule()]))
                files.append(("virtualservice.yaml", [virtualService()]))
            } else {
                files.append(("service-stable.yaml", [service(name: "\(app)-stable", track: .stable)]))
                files.append(("service-canary.yaml", [service(name: "\(app)-canary", track: .canary)]))
                files.append(("httproute.yaml", [httpRoute()]))
            }
        case .argoRollouts:
            files.append(("rollout.yaml", [rollout()]))
            files.append(("service-stable.yaml", [service(name: "\(app)-stable", track: nil)]))
            files.append(("service-canary.yaml", [service(name: "\(app)-canary", track: nil)]))
            files.append(("virtualservice.yaml", [argoVirtualService()]))
        }
        var kustomization: [(String, Node?)] = [
            ("apiVersion", Y.str("kustomize.config.k8s.io/v1beta1")), ("kind", Y.str("Kustomization")),
        ]
        if let namespace { kustomization.append(("namespace", Y.str(namespace))) }
        kustomization.append(("resources", Y.seq((files.map(\.0) + extra).map(Y.str))))
        return [("kustomization.yaml", [Y.map(kustomization)])] + files
    }

    enum Track: String { case stable, canary }

    func image(_ t: Track) -> ReleaseImage { t == .stable ? stable : canary }

    /// The labels a pod carries: who it is (app, track) and which version, for selectors,
    /// subsets, Prometheus and log pipelines.
    func podLabels(_ t: Track, version: String? = nil) -> [(String, String)] {
        let v = version ?? image(t).version
        return [
            ("app", app), ("track", t.rawValue), ("version", v), ("app.kubernetes.io/name", app),
            ("app.kubernetes.io/version", v), ("app.kubernetes.io/part-of", app),
            ("app.kubernetes.io/managed-by", "stamp"),
        ]
    }

    func metadata(_ name: String, labels: [(String, String)], annotations: [(String, String)] = []) -> Node {
        Y.map([
            ("name", Y.str(name)), ("labels", Y.labels(labels)),
            ("annotations", annotations.isEmpty ? nil : Y.labels(annotations)),
        ])
    }

    func claimName(_ t: Track) -> String { "\(app)-\(t.rawValue)-storage" }

    func deployment(_ t: Track) -> Node {
        let labels = podLabels(t)
        let volume = Y.map([
            ("name", Y.str("storage")),
            ("persistentVolumeClaim", Y.map([("claimName", Y.str(claimName(t)))])),
        ])
        return Y.map([
            ("apiVersion", Y.str("apps/v1")), ("kind", Y.str("Deployment")),
            ("metadata", metadata("\(app)-\(t.rawValue)", labels: labels)),
            (
                "spec",
                Y.map([
                    ("replicas", Y.int(t == .stable ? stableReplicas : canaryReplicas)),
                    // One writer of the SQLite storage at a time: the old pod stops first.
                    ("strategy", Y.map([("type", Y.str("Recreate"))])),
                    ("selector", Y.map([("matchLabels", Y.labels([("app", app), ("track", t.rawValue)]))])),
                    ("template", podTemplate(t, labels: labels, volume: volume)),
                ])
            ),
        ])
    }

    func podTemplate(_ t: Track, labels: [(String, String)], volume: Node) -> Node {
        Y.map([
            ("metadata", Y.map([("labels", Y.labels(labels))])),
            (
                "spec",
                Y.map([
                    ("securityContext", Y.map([("fsGroup", Y.int(fsGroup))])),
                    ("containers", Y.seq([container(t)])),
                    ("volumes", Y.seq([volume])),
                ])
            ),
        ])
    }

    func container(_ t: Track) -> Node {
        var env: [Node] = [
            Y.map([("name", Y.str("SERVER_PORT")), ("value", Y.str(String(port)))]),
            Y.map([("name", Y.str("STORAGE_DIR")), ("value", Y.str(storagePath))]),
        ]
        for (key, optional) in identityKeys.map({ ($0, false) }) + optionalIdentityKeys.map({ ($0, true) }) {
            var ref: [(String, Node?)] = [("name", Y.str(secretName)), ("key", Y.str(key))]
            if optional { ref.append(("optional", .scalar(Node.Scalar("true", Tag(.bool))))) }
            env.append(Y.map([("name", Y.str(key)), ("valueFrom", Y.map([("secretKeyRef", Y.map(ref))]))]))
        }
        return Y.map([
            ("name", Y.str("app")), ("image", Y.str(image(t).reference)),
            ("ports", Y.seq([Y.map([("name", Y.str("http")), ("containerPort", Y.int(port))])])),
            ("env", Y.seq(env)),
            ("startupProbe", probeNode(.startup)), ("readinessProbe", probeNode(.readiness)),
            ("livenessProbe", probeNode(.liveness)),
            ("volumeMounts", Y.seq([Y.map([("name", Y.str("storage")), ("mountPath", Y.str(storagePath))])])),
        ])
    }

    enum ProbeRole { case startup, readiness, liveness }

    /// Kubernetes does not run an image's HEALTHCHECK: the same check, at the same pace. The
    /// start period becomes a startup probe that allows it (then retries) before liveness counts.
    func probeNode(_ role: ProbeRole) -> Node {
        let action: (String, Node) =
            probe == .exec
            ? ("exec", Y.map([("command", Y.seq([Y.str(healthScript)]))]))
            : ("httpGet", Y.map([("path", Y.str(pingPath)), ("port", Y.str("http"))]))
        let period = role == .startup ? max(1, min(interval, 10)) : max(1, interval)
        let failures =
            role == .startup ? (startPeriod + period - 1) / period + max(1, retries) : max(1, retries)
        return Y.map([
            action, ("periodSeconds", Y.int(period)), ("timeoutSeconds", Y.int(max(1, timeout))),
            ("failureThreshold", Y.int(failures)),
        ])
    }

    func claim(_ t: Track) -> Node {
        var spec: [(String, Node?)] = [
            ("accessModes", Y.seq([Y.str("ReadWriteOnce")])),
            ("resources", Y.map([("requests", Y.map([("storage", Y.str(storageSize))]))])),
            ("storageClassName", storageClass.map(Y.str)),
        ]
        if t == .canary && storage == .clone {
            spec.append(
                (
                    "dataSource",
                    Y.map([("kind", Y.str("PersistentVolumeClaim")), ("name", Y.str(claimName(.stable)))])
                ))
        }
        return Y.map([
            ("apiVersion", Y.str("v1")), ("kind", Y.str("PersistentVolumeClaim")),
            ("metadata", metadata(claimName(t), labels: [("app", app), ("track", t.rawValue)])),
            ("spec", Y.map(spec)),
        ])
    }

    func service(name: String, track: Track?) -> Node {
        var selector = [("app", app)]
        if let track { selector.append(("track", track.rawValue)) }
        return Y.map([
            ("apiVersion", Y.str("v1")), ("kind", Y.str("Service")),
            ("metadata", metadata(name, labels: [("app", app)])),
            (
                "spec",
                Y.map([
                    ("selector", Y.labels(selector)),
                    (
                        "ports",
                        Y.seq([
                            Y.map([("name", Y.str("http")), ("port", Y.int(port)), ("targetPort", Y.str("http"))])
                        ])
                    ),
                ])
            ),
        ])
    }

    func destinationRule() -> Node {
        Y.map([
            ("apiVersion", Y.str("networking.istio.io/v1")), ("kind", Y.str("DestinationRule")),
            ("metadata", metadata(app, labels: [("app", app)])),
            (
                "spec",
                Y.map([
                    ("host", Y.str(app)),
                    (
                        "subsets",
                        Y.seq(
                            [Track.stable, .canary].map { t in
                                Y.map([
                                    ("name", Y.str(t.rawValue)),
                                    ("labels", Y.labels([("version", image(t).version)])),
                                ])
                            })
                    ),
                ])
            ),
        ])
    }

    func headerMatch() -> Node {
        Y.map([("headers", Y.map([(headerName, Y.map([("exact", Y.str(headerValue))]))]))])
    }

    func virtualService() -> Node {
        func destination(_ t: Track, weight: Int?) -> Node {
            Y.map([
                ("destination", Y.map([("host", Y.str(app)), ("subset", Y.str(t.rawValue))])),
                ("weight", weight.map(Y.int)),
            ])
        }
        return virtualService(http: [
            // Testers who send the header reach the canary whatever the weight.
            Y.map([
                ("name", Y.str("canary-header")), ("match", Y.seq([headerMatch()])),
                ("route", Y.seq([destination(.canary, weight: nil)])),
            ]),
            Y.map([
                ("name", Y.str("split")),
                ("route", Y.seq([destination(.stable, weight: 100 - weight), destination(.canary, weight: weight)])),
            ]),
        ])
    }

    /// A VirtualService for the host (through the gateway, when one is named) with these routes.
    func virtualService(http: [Node]) -> Node {
        Y.map([
            ("apiVersion", Y.str("networking.istio.io/v1")), ("kind", Y.str("VirtualService")),
            ("metadata", metadata(app, labels: [("app", app)])),
            (
                "spec",
                Y.map([
                    ("hosts", Y.seq([Y.str(host)])), ("gateways", gateway.map { Y.seq([Y.str($0)]) }),
                    ("http", Y.seq(http)),
                ])
            ),
        ])
    }

    func httpRoute() -> Node {
        func backend(_ t: Track, weight: Int?) -> Node {
            Y.map([("name", Y.str("\(app)-\(t.rawValue)")), ("port", Y.int(port)), ("weight", weight.map(Y.int))])
        }
        let header = Y.map([
            (
                "headers",
                Y.seq([Y.map([("type", Y.str("Exact")), ("name", Y.str(headerName)), ("value", Y.str(headerValue))])])
            )
        ])
        return Y.map([
            ("apiVersion", Y.str("gateway.networking.k8s.io/v1")), ("kind", Y.str("HTTPRoute")),
            ("metadata", metadata(app, labels: [("app", app)])),
            (
                "spec",
                Y.map([
                    ("parentRefs", Y.seq([Y.map([("name", Y.str(gateway ?? app))])])),
                    ("hostnames", Y.seq([Y.str(host)])),
                    (
                        "rules",
                        Y.seq([
                            Y.map([
                                ("matches", Y.seq([header])),
                                ("backendRefs", Y.seq([backend(.canary, weight: nil)])),
                            ]),
                            Y.map([
                                (
                                    "backendRefs",
                                    Y.seq([backend(.stable, weight: 100 - weight), backend(.canary, weight: weight)])
                                )
                            ]),
                        ])
                    ),
                ])
            ),
        ])
    }

    /// One pod template, the canary's (what Argo Rollouts rolls out); the stable image and
    /// version are kept in annotations for `rollback`. Each pod gets its own claim from the
    /// template (a shared ReadWriteOnce claim would hold both versions' SQLite).
    func rollout() -> Node {
        let labels = podLabels(.canary).filter { $0.0 != "track" }
        let volume = Y.map([
            ("name", Y.str("storage")),
            (
                "ephemeral",
                Y.map([
                    (
                        "volumeClaimTemplate",
                        Y.map([
                            ("metadata", Y.map([("labels", Y.labels([("app", app)]))])),
                            (
                                "spec",
                                Y.map([
                                    ("accessModes", Y.seq([Y.str("ReadWriteOnce")])),
                                    ("resources", Y.map([("requests", Y.map([("storage", Y.str(storageSize))]))])),
                                    ("storageClassName", storageClass.map(Y.str)),
                                ])
                            ),
                        ])
                    )
                ])
            ),
        ])
        let steps = Y.seq([
            Y.map([
                (
                    "setHeaderRoute",
                    Y.map([
                        ("name", Y.str("canary-header")),
                        (
                            "match",
                            Y.seq([
                                Y.map([
                                    ("headerName", Y.str(headerName)),
                                    ("headerValue", Y.map([("exact", Y.str(headerValue))])),
                                ])
                            ])
                        ),
                    ])
                )
            ]),
            Y.map([("setWeight", Y.int(weight))]),
            Y.map([("pause", Y.map([]))]),
        ])
        return Y.map([
            ("apiVersion", Y.str("argoproj.io/v1alpha1")), ("kind", Y.str("Rollout")),
            (
                "metadata",
                metadata(
                    app, labels: [("app", app)],
                    annotations: [
                        (RolloutKeys.stableImage, stable.reference), (RolloutKeys.stableVersion, stable.version),
                    ])
            ),
            (
                "spec",
                Y.map([
                    ("replicas", Y.int(stableReplicas)),
                    ("selector", Y.map([("matchLabels", Y.labels([("app", app)]))])),
                    ("template", podTemplate(.canary, labels: labels, volume: volume)),
                    (
                        "strategy",
                        Y.map([
                            (
                                "canary",
                                Y.map([
                                    ("canaryService", Y.str("\(app)-canary")),
                                    ("stableService", Y.str("\(app)-stable")),
                                    ("canaryMetadata", Y.map([("labels", Y.labels([("track", "canary")]))])),
                                    ("stableMetadata", Y.map([("labels", Y.labels([("track", "stable")]))])),
                                    (
                                        "trafficRouting",
                                        Y.map([
                                            ("managedRoutes", Y.seq([Y.map([("name", Y.str("canary-header"))])])),
                                            (
                                                "istio",
                                                Y.map([
                                                    (
                                                        "virtualService",
                                                        Y.map([
                                                            ("name", Y.str(app)),
                                                            ("routes", Y.seq([Y.str("primary")])),
                                                        ])
                                                    )
                                                ])
                                            ),
                                        ])
                                    ),
                                    ("steps", steps),
                                ])
                            )
                        ])
                    ),
                ])
            ),
        ])
    }

    func argoVirtualService() -> Node {
        func destination(_ t: Track, weight: Int) -> Node {
            Y.map([("destination", Y.map([("host", Y.str("\(app)-\(t.rawValue)"))])), ("weight", Y.int(weight))])
        }
        // Argo Rollouts sets these weights as the steps run.
        return virtualService(http: [
            Y.map([
                ("name", Y.str("primary")),
                ("route", Y.seq([destination(.stable, weight: 100), destination(.canary, weight: 0)])),
            ])
        ])
    }
}

/// Annotations stamp keeps on a Rollout.
enum RolloutKeys {
    static let stableImage = "stamp.dev/stable-image"
    static let stableVersion = "stamp.dev/stable-version"
}
