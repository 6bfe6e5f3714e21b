import Foundation
import Yams

/// What every mesh renders the same way: the pods (Deployments, or a Rollout's template),
/// their claims, Services and the NetworkPolicy.
enum Workloads {
    typealias Track = CanarySpec.Track

    /// The labels a pod carries: who it is (app, track) and which version, for selectors,
    /// subsets, Prometheus and log pipelines. Selectors use app and track only: a version
    /// changes at promotion, a track never.
    static func podLabels(_ s: CanarySpec, _ t: Track?, version: String) -> [(String, String)] {
        var l = [("app", s.app)]
        if let t { l.append(("track", t.rawValue)) }
        return l + [
            ("version", version), ("app.kubernetes.io/name", s.app), ("app.kubernetes.io/version", version),
            ("app.kubernetes.io/part-of", s.app), ("app.kubernetes.io/managed-by", "stamp"),
        ]
    }

    static func metadata(_ name: String, labels: [(String, String)], annotations: [(String, String)] = []) -> Node {
        Y.map([
            ("name", Y.str(name)), ("labels", Y.labels(labels)),
            ("annotations", annotations.isEmpty ? nil : Y.labels(annotations)),
        ])
    }

    static func claimName(_ s: CanarySpec, _ t: Track) -> String {
        t == .stable
            ? Claims.stable(s.app) : Claims.canary(s.app, version: s.canary.version, storage: s.storage)
    }

    static func deployment(_ s: CanarySpec, _ t: Track) -> Node {
        let labels = podLabels(s, t, version: s.image(t).version)
        return Y.map([
            ("apiVersion", Y.str("apps/v1")), ("kind", Y.str("Deployment")),
            ("metadata", metadata("\(s.app)-\(t.rawValue)", labels: labels)),
            (
                "spec",
                Y.map([
                    ("replicas", Y.int(t == .stable ? s.stableReplicas : s.canaryReplicas)),
                    // One writer of the SQLite storage at a time: the old pod stops first.
                    ("strategy", Y.map([("type", Y.str("Recreate"))])),
                    ("selector", Y.map([("matchLabels", Y.labels([("app", s.app), ("track", t.rawValue)]))])),
                    ("template", podTemplate(s, image: s.image(t), labels: labels, claim: claimName(s, t))),
                ])
            ),
        ])
    }

    /// The pod: Pod Security "restricted" (non-root by number, no privilege escalation, no
    /// capabilities, RuntimeDefault seccomp), no service-account token, requests and limits,
    /// the data folder and the settings file on the track's own claim.
    static func podTemplate(_ s: CanarySpec, image: ReleaseImage, labels: [(String, String)], claim: String?) -> Node {
        let f = s.facts
        var pod: [(String, Node)] = [("runAsNonRoot", Y.bool(true))]
        if let uid = f.uid { pod.append(("runAsUser", Y.int(uid))) }
        if let gid = f.gid {
            pod.append(("runAsGroup", Y.int(gid)))
            pod.append(("fsGroup", Y.int(gid)))
        }
        pod.append(("seccompProfile", Y.map([("type", Y.str("RuntimeDefault"))])))
        var volumes: [Node] = []
        if let claim, s.stateful {
            volumes.append(
                Y.map([
                    ("name", Y.str("storage")),
                    ("persistentVolumeClaim", Y.map([("claimName", Y.str(claim))])),
                ]))
        }
        var annotations: [(String, String)] = []
        if s.facts.authInDatabase && !s.authRequired && s.storage == .fresh {
            annotations.append((StampKeys.openCanary, "true"))
        }
        return Y.map([
            (
                "metadata",
                Y.map([
                    ("labels", Y.labels(labels)),
                    ("annotations", annotations.isEmpty ? nil : Y.labels(annotations)),
                ])
            ),
            (
                "spec",
                Y.map([
                    ("automountServiceAccountToken", Y.bool(false)),
                    ("securityContext", Y.map(pod.map { ($0.0, Optional($0.1)) })),
                    ("initContainers", settingsInit(s, image: image).map { Y.seq([$0]) }),
                    ("containers", Y.seq([container(s, image: image)])),
                    ("volumes", volumes.isEmpty ? nil : Y.seq(volumes)),
                ])
            ),
        ])
    }

    static func containerSecurity() -> Node {
        Y.map([
            ("allowPrivilegeEscalation", Y.bool(false)), ("runAsNonRoot", Y.bool(true)),
            ("capabilities", Y.map([("drop", Y.seq([Y.str("ALL")]))])),
            ("seccompProfile", Y.map([("type", Y.str("RuntimeDefault"))])),
        ])
    }

    static func resources(_ s: CanarySpec, small: Bool = false) -> Node {
        func pair(_ cpu: String?, _ memory: String?) -> Node? {
            let p = [("cpu", cpu), ("memory", memory)].compactMap { k, v in v.map { (k, Y.str($0)) } }
            return p.isEmpty ? nil : Y.map(p)
        }
        if small {
            return Y.map([("requests", pair("10m", "16Mi")), ("limits", pair("100m", "64Mi"))])
        }
        let f = s.facts
        return Y.map([
            ("requests", pair(s.cpuRequest ?? f.cpuRequest ?? "100m", s.memoryRequest ?? f.memoryRequest ?? "128Mi")),
            ("limits", pair(s.cpuLimit ?? f.cpuLimit ?? "1", s.memoryLimit ?? f.memoryLimit ?? "512Mi")),
        ])
    }

    /// The settings file lives on the track's claim (`.env` beside the data, as every documented
    /// `docker run` of anything-llm mounts it); a file must exist before it is mounted by
    /// subPath (else the kubelet makes a folder), so an init container creates it, empty.
    static func settingsInit(_ s: CanarySpec, image: ReleaseImage) -> Node? {
        guard let file = s.facts.settingsFile, s.stateful else { return nil }
        let name = (file as NSString).lastPathComponent
        return Y.map([
            ("name", Y.str("settings-file")), ("image", Y.str(image.reference)),
            ("imagePullPolicy", Y.str("IfNotPresent")),
            (
                "command",
                Y.seq(
                    ["/bin/sh", "-c", "test -e \"$1\" || : > \"$1\"", "settings-file", "/stamp-storage/" + name].map(
                        Y.str))
            ),
            ("securityContext", containerSecurity()), ("resources", resources(s, small: true)),
            ("volumeMounts", Y.seq([Y.map([("name", Y.str("storage")), ("mountPath", Y.str("/stamp-storage"))])])),
        ])
    }

    static func container(_ s: CanarySpec, image: ReleaseImage) -> Node {
        let f = s.facts
        var env: [Node] = []
        if let portEnv = f.portEnv, let port = f.port {
            env.append(Y.map([("name", Y.str(portEnv)), ("value", Y.str(String(port)))]))
        }
        if let storageEnv = f.storageEnv, let path = f.storagePath {
            env.append(Y.map([("name", Y.str(storageEnv)), ("value", Y.str(path))]))
        }
        for key in f.identityKeys + f.optionalIdentityKeys {
            var ref: [(String, Node?)] = [("name", Y.str(s.secretName)), ("key", Y.str(key))]
            let required = f.identityKeys.contains(key) || (key == f.authKey && s.authRequired)
            if !required { ref.append(("optional", Y.bool(true))) }
            env.append(Y.map([("name", Y.str(key)), ("valueFrom", Y.map([("secretKeyRef", Y.map(ref))]))]))
        }
        var mounts: [Node] = []
        if let path = f.storagePath {
            mounts.append(Y.map([("name", Y.str("storage")), ("mountPath", Y.str(path))]))
            if let file = f.settingsFile {
                mounts.append(
                    Y.map([
                        ("name", Y.str("storage")), ("mountPath", Y.str(file)),
                        ("subPath", Y.str((file as NSString).lastPathComponent)),
                    ]))
            }
        }
        return Y.map([
            ("name", Y.str("app")), ("image", Y.str(image.reference)), ("imagePullPolicy", Y.str("IfNotPresent")),
            ("ports", Y.seq([Y.map([("name", Y.str("http")), ("containerPort", Y.int(f.port ?? 80))])])),
            ("env", env.isEmpty ? nil : Y.seq(env)),
            ("securityContext", containerSecurity()), ("resources", resources(s)),
            ("startupProbe", probe(s, .startup)), ("readinessProbe", probe(s, .readiness)),
            ("livenessProbe", probe(s, .liveness)),
            ("volumeMounts", mounts.isEmpty ? nil : Y.seq(mounts)),
        ])
    }

    enum ProbeRole { case startup, readiness, liveness }

    /// Kubernetes does not run an image's HEALTHCHECK. Readiness is the health check at its pace
    /// (the stamped script, or HTTP on the ping path); startup allows `--startup-budget` (the
    /// kubelet kills a container whose startup probe fails, mid-migration if too short);
    /// liveness asks only whether the server answers, and only after twice the failures.
    static func probe(_ s: CanarySpec, _ role: ProbeRole) -> Node {
        let f = s.facts
        // The port by number: podman's kube play reads no port names.
        let port = Y.int(f.port ?? 80)
        let http: (String, Node) =
            f.healthPath.map { ("httpGet", Y.map([("path", Y.str($0)), ("port", port)])) }
            ?? ("tcpSocket", Y.map([("port", port)]))
        let check: (String, Node) =
            (s.probe ?? s.defaultProbe) == .exec
            ? ("exec", Y.map([("command", Y.seq([Y.str(f.healthScript ?? "")]))])) : http
        let retries = max(1, f.retries)
        switch role {
        case .startup:
            return Y.map([
                check, ("periodSeconds", Y.int(10)), ("timeoutSeconds", Y.int(max(1, f.timeout))),
                ("failureThreshold", Y.int((s.startupBudget + 9) / 10)),
            ])
        case .readiness:
            return Y.map([
                check, ("periodSeconds", Y.int(max(1, f.interval))), ("timeoutSeconds", Y.int(max(1, f.timeout))),
                ("failureThreshold", Y.int(retries)),
            ])
        case .liveness:
            return Y.map([
                http, ("periodSeconds", Y.int(max(10, f.interval))), ("timeoutSeconds", Y.int(max(1, f.timeout))),
                ("failureThreshold", Y.int(max(3, retries) * 2)),
            ])
        }
    }

    static func claim(
        _ s: CanarySpec, name: String, track: Track?, version: String?, cloneOf: String?, storage: CanaryStorage?
    ) -> Node {
        var spec: [(String, Node?)] = [
            ("accessModes", Y.seq([Y.str(s.accessMode.rawValue)])),
            ("resources", Y.map([("requests", Y.map([("storage", Y.str(s.storageSize))]))])),
            ("storageClassName", s.storageClass.map(Y.str)),
        ]
        if let cloneOf {
            spec.append(("dataSource", Y.map([("kind", Y.str("PersistentVolumeClaim")), ("name", Y.str(cloneOf))])))
        }
        var labels = [("app", s.app)]
        if let track { labels.append(("track", track.rawValue)) }
        if let version { labels.append(("version", version)) }
        return Y.map([
            ("apiVersion", Y.str("v1")), ("kind", Y.str("PersistentVolumeClaim")),
            (
                "metadata",
                metadata(name, labels: labels, annotations: storage.map { [(StampKeys.storage, $0.rawValue)] } ?? [])
            ),
            ("spec", Y.map(spec)),
        ])
    }

    static func service(_ s: CanarySpec, name: String, track: Track?) -> Node {
        var selector = [("app", s.app)]
        if let track { selector.append(("track", track.rawValue)) }
        return Y.map([
            ("apiVersion", Y.str("v1")), ("kind", Y.str("Service")),
            ("metadata", metadata(name, labels: [("app", s.app)])),
            (
                "spec",
                Y.map([
                    ("selector", Y.labels(selector)),
                    (
                        "ports",
                        Y.seq([
                            Y.map([
                                ("name", Y.str("http")), ("port", Y.int(s.facts.port ?? 80)),
                                ("targetPort", Y.str("http")),
                            ])
                        ])
                    ),
                ])
            ),
        ])
    }

    /// Only the gateway's namespace and the app's own (in-mesh callers) reach the pods' port:
    /// nobody reaches the canary around the route. Istio's sidecar metrics ports stay open to
    /// Prometheus.
    static func networkPolicy(_ s: CanarySpec) -> Node {
        var from: [Node] = [Y.map([("podSelector", Y.map([]))])]
        if let ns = s.gateway?.namespace {
            from.append(
                Y.map([
                    ("namespaceSelector", Y.map([("matchLabels", Y.labels([("kubernetes.io/metadata.name", ns)]))]))
                ]))
        }
        var rules: [Node] = [
            Y.map([
                ("from", Y.seq(from)),
                ("ports", Y.seq([Y.map([("protocol", Y.str("TCP")), ("port", Y.int(s.facts.port ?? 80))])])),
            ])
        ]
        if s.mesh != .gatewayAPI {
            rules.append(
                Y.map([
                    (
                        "ports",
                        Y.seq([15020, 15090].map { Y.map([("protocol", Y.str("TCP")), ("port", Y.int($0))]) })
                    )
                ]))
        }
        return Y.map([
            ("apiVersion", Y.str("networking.k8s.io/v1")), ("kind", Y.str("NetworkPolicy")),
            ("metadata", metadata("\(s.app)-ingress", labels: [("app", s.app)])),
            (
                "spec",
                Y.map([
                    ("podSelector", Y.map([("matchLabels", Y.labels([("app", s.app)]))])),
                    ("policyTypes", Y.seq([Y.str("Ingress")])), ("ingress", Y.seq(rules)),
                ])
            ),
        ])
    }
}
