import Foundation
import Yams

/// Argo Rollouts (canary strategy, Istio traffic routing), by its controller's rules:
/// - on a Rollout's first creation every step is skipped and the template becomes stable at
///   100%: the folder is rendered at the stable image; the canary starts by a template change
///   (`stamp canary start`, or `next` for a later cycle);
/// - changing the steps resets the step index: `weight` edits `setWeight` only before a canary
///   runs; promotion is the controller's (`kubectl argo rollouts promote`), never an edit;
/// - a template equal to the stable ReplicaSet's is taken back at once, without steps: that is
///   `rollback`;
/// - `setHeaderRoute` needs `trafficRouting.managedRoutes`;
/// - both versions run from one template, so each version's claim is named in it: a claim per
///   version (not a generic ephemeral volume, deleted with its pod), which that version's
///   ReplicaSet keeps through promotion.
/// What it cannot do: stick a client to a version (Argo owns the weighted route's
/// destinations), so with weights between 0 and 100 one client may alternate.
enum ArgoRules: MeshRules {
    static func files(_ s: CanarySpec) -> [(String, [Node])] {
        let stableClaim = Claims.version(s.app, s.stable.version)
        let canaryClaim = Claims.version(s.app, s.canary.version)
        var files: [(String, [Node])] = [
            ("rollout.yaml", [rollout(s, stableClaim: stableClaim, canaryClaim: canaryClaim)]),
            ("service.yaml", [Workloads.service(s, name: s.app, track: nil)]),
            ("service-stable.yaml", [Workloads.service(s, name: "\(s.app)-stable", track: nil)]),
            ("service-canary.yaml", [Workloads.service(s, name: "\(s.app)-canary", track: nil)]),
            ("virtualservice.yaml", [virtualService(s)]),
        ]
        if let prometheus = s.prometheus {
            files.append(("analysistemplate.yaml", [AnalysisTemplates.template(s, prometheus: prometheus)]))
        }
        if s.stateful {
            files.insert(
                (
                    "storage-stable.yaml",
                    [
                        Workloads.claim(
                            s, name: stableClaim, track: nil, version: s.stable.version, cloneOf: nil, storage: nil)
                    ]
                ), at: 1)
            files.insert(
                (
                    "storage-canary.yaml",
                    [
                        Workloads.claim(
                            s, name: canaryClaim, track: nil, version: s.canary.version,
                            cloneOf: s.storage == .clone ? stableClaim : nil, storage: s.storage)
                    ]
                ), at: 2)
        }
        return files
    }

    static func rollout(_ s: CanarySpec, stableClaim: String, canaryClaim: String) -> Node {
        let labels = Workloads.podLabels(s, nil, version: s.stable.version)
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
                                    ("headerName", Y.str(s.headerName)),
                                    ("headerValue", Y.map([("exact", Y.str(s.headerValue))])),
                                ])
                            ])
                        ),
                    ])
                )
            ]),
            Y.map([("setWeight", Y.int(s.weight))]),
            Y.map([("pause", Y.map([]))]),
        ])
        var annotations = [
            (RolloutKeys.stableImage, s.stable.reference), (RolloutKeys.stableVersion, s.stable.version),
            (RolloutKeys.canaryImage, s.canary.reference), (RolloutKeys.canaryVersion, s.canary.version),
        ]
        if s.stateful {
            annotations.insert((RolloutKeys.stableClaim, stableClaim), at: 2)
            annotations.append((RolloutKeys.canaryClaim, canaryClaim))
        }
        return Y.map([
            ("apiVersion", Y.str("argoproj.io/v1alpha1")), ("kind", Y.str("Rollout")),
            ("metadata", Workloads.metadata(s.app, labels: [("app", s.app)], annotations: annotations)),
            (
                "spec",
                Y.map([
                    ("replicas", Y.int(s.stableReplicas)),
                    ("selector", Y.map([("matchLabels", Y.labels([("app", s.app)]))])),
                    ("template", Workloads.podTemplate(s, image: s.stable, labels: labels, claim: stableClaim)),
                    (
                        "strategy",
                        Y.map([
                            (
                                "canary",
                                Y.map([
                                    ("canaryService", Y.str("\(s.app)-canary")),
                                    ("stableService", Y.str("\(s.app)-stable")),
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
                                                            ("name", Y.str(s.app)),
                                                            ("routes", Y.seq([Y.str("primary")])),
                                                        ])
                                                    )
                                                ])
                                            ),
                                        ])
                                    ),
                                    ("steps", steps),
                                    ("analysis", s.prometheus.map { _ in AnalysisTemplates.rolloutAnalysis(s) }),
                                ])
                            )
                        ])
                    ),
                ])
            ),
        ])
    }

    static func virtualService(_ s: CanarySpec) -> Node {
        func destination(_ t: String, weight: Int) -> Node {
            Y.map([("destination", Y.map([("host", Y.str("\(s.app)-\(t)"))])), ("weight", Y.int(weight))])
        }
        // Argo Rollouts sets these weights as the steps run, and puts its header route first.
        return IstioRules.virtualService(
            s,
            http: [
                Y.map([
                    ("name", Y.str("primary")),
                    ("route", Y.seq([destination("stable", weight: 100), destination("canary", weight: 0)])),
                ])
            ])
    }

    // MARK: - The folder

    struct Record {
        var at: At
        var annotations: [String: String]
        var image: String?
        var version: String?
        var claim: String?
        func get(_ k: String) -> String? { annotations[k] }
        var running: Bool { image != nil && image != annotations[RolloutKeys.stableImage] }
    }

    static func record(_ f: CanaryFolder) throws -> Record {
        guard let at = f.find("Rollout").first else { throw CanaryError.badInput("\(f.path): no Rollout") }
        let d = f.doc(at)
        return Record(
            at: at, annotations: Objects.labels(d["metadata"]?["annotations"]),
            image: CanaryFolder.containerImage(d["spec"]?["template"]),
            version: d["spec"]?["template"]?["metadata"]?["labels"]?["version"]?.text, claim: f.claimOf(at))
    }

    static func weight(_ f: CanaryFolder) -> Int? {
        for at in f.find("Rollout") {
            guard (try? record(f))?.running == true else { return 0 }
            for s in f.doc(at)["spec"]?["strategy"]?["canary"]?["steps"]?.items ?? [] {
                if let w = s["setWeight"]?.int { return w }
            }
        }
        return nil
    }

    /// The weight of the first step: what the canary gets once started (`weight` is what it
    /// gets now, 0 before `start`).
    static func plannedWeight(_ f: CanaryFolder) -> Int? {
        for at in f.find("Rollout") {
            for s in f.doc(at)["spec"]?["strategy"]?["canary"]?["steps"]?.items ?? [] {
                if let w = s["setWeight"]?.int { return w }
            }
        }
        return nil
    }

    static func command(_ f: CanaryFolder, _ verb: String) -> String {
        "kubectl argo rollouts \(verb) \(f.appName)" + (f.namespace.map { " -n \($0)" } ?? "")
    }

    static func setWeight(_ f: CanaryFolder, _ p: Int) throws {
        let r = try record(f)
        if r.running {
            throw CanaryError.usage(
                "argo-rollouts: a canary is running, and changing its steps makes Argo start them again; "
                    + "advance with `\(command(f, "promote"))`, or go back with `stamp canary rollback`")
        }
        let steps = f.doc(r.at)["spec"]?["strategy"]?["canary"]?["steps"]?.items ?? []
        guard let i = steps.firstIndex(where: { $0["setWeight"] != nil }) else {
            throw CanaryError.badInput("\(f.path): the Rollout has no setWeight step")
        }
        f.set(r.at, ["spec", "strategy", "canary", "steps", .index(i), "setWeight"], Y.int(p))
    }

    /// The template runs the recorded canary: Argo starts the steps.
    static func start(_ f: CanaryFolder) throws -> [String] {
        let r = try record(f)
        guard let image = r.get(RolloutKeys.canaryImage), let version = r.get(RolloutKeys.canaryVersion) else {
            throw CanaryError.badInput("\(f.path): the Rollout records no canary (\(RolloutKeys.canaryImage))")
        }
        if r.image == image { return ["the canary \(version) already runs from the template"] }
        try f.setWorkload(r.at, image: image, version: version)
        if let old = r.claim, let claim = r.get(RolloutKeys.canaryClaim) { f.setClaimName(r.at, from: old, to: claim) }
        return ["Argo starts the steps when the folder is applied: kubectl apply -k \(f.path)"]
    }

    /// The controller promotes; the folder records the canary as the stable version, without
    /// touching the template or the steps (an edit there would restart them).
    static func promote(_ f: CanaryFolder) throws -> [String] {
        let r = try record(f)
        guard r.running, let image = r.image, let version = r.version else {
            throw CanaryError.usage("argo-rollouts: no canary runs from the template (stamp canary start first)")
        }
        f.set(r.at, ["metadata", "annotations", .key(RolloutKeys.stableImage)], Y.str(image))
        f.set(r.at, ["metadata", "annotations", .key(RolloutKeys.stableVersion)], Y.str(version))
        if let claim = r.claim {
            f.set(r.at, ["metadata", "annotations", .key(RolloutKeys.stableClaim)], Y.str(claim))
        }
        return [
            "the promotion is Argo's: run `\(command(f, "promote")) --full`; the folder now records \(version) as "
                + "stable (no step or template changed)"
        ]
    }

    /// The template goes back to the stable's: Argo returns to the stable ReplicaSet at once.
    static func rollback(_ f: CanaryFolder) throws -> [String] {
        let r = try record(f)
        guard let image = r.get(RolloutKeys.stableImage), let version = r.get(RolloutKeys.stableVersion) else {
            throw CanaryError.badInput(
                "\(f.path)/\(r.at.file): the Rollout has no \(RolloutKeys.stableImage) annotation to roll back to")
        }
        try f.setWorkload(r.at, image: image, version: version)
        if let old = r.claim, let claim = r.get(RolloutKeys.stableClaim) { f.setClaimName(r.at, from: old, to: claim) }
        return [
            "Argo takes the stable template back without steps when the folder is applied (or now: "
                + "`\(command(f, "abort"))`)"
        ]
    }

    static func next(_ f: CanaryFolder, _ n: NextCanary) throws -> [String] {
        let r = try record(f)
        if r.running {
            throw CanaryError.usage(
                "argo-rollouts: a canary still runs from the template; promote it (`\(command(f, "promote")) --full`, "
                    + "then stamp canary promote) or roll it back first")
        }
        let app = f.appName
        f.set(r.at, ["metadata", "annotations", .key(RolloutKeys.canaryImage)], Y.str(n.image.reference))
        f.set(r.at, ["metadata", "annotations", .key(RolloutKeys.canaryVersion)], Y.str(n.image.version))
        if let stableClaim = r.claim {
            let claim = Claims.version(app, n.image.version)
            f.set(r.at, ["metadata", "annotations", .key(RolloutKeys.canaryClaim)], Y.str(claim))
            // The claim the stable runs on keeps its applied text; the new one is the canary's.
            guard let canaryAt = f.find("PersistentVolumeClaim").first(where: { $0.file == "storage-canary.yaml" })
            else { return try start(f) }
            if Objects.name(f.doc(canaryAt)) == stableClaim, f.files["storage-stable.yaml"] != nil {
                f.copyFile(from: "storage-canary.yaml", to: "storage-stable.yaml")
            }
            let wasClone = f.doc(canaryAt)["spec"]?["dataSource"] != nil
            let storage = n.storage ?? (wasClone ? .clone : .fresh)
            f.set(canaryAt, ["metadata", "name"], Y.str(claim))
            f.set(canaryAt, ["metadata", "labels", "version"], Y.str(n.image.version))
            f.set(canaryAt, ["metadata", "annotations", .key(StampKeys.storage)], Y.str(storage.rawValue))
            if storage == .clone {
                f.set(
                    canaryAt, ["spec", "dataSource"],
                    Y.map([("kind", Y.str("PersistentVolumeClaim")), ("name", Y.str(stableClaim))]))
            } else if wasClone {
                f.remove(canaryAt, ["spec", "dataSource"])
            }
        }
        let steps = f.doc(r.at)["spec"]?["strategy"]?["canary"]?["steps"]?.items ?? []
        if let i = steps.firstIndex(where: { $0["setWeight"] != nil }) {
            f.set(r.at, ["spec", "strategy", "canary", "steps", .index(i), "setWeight"], Y.int(n.weight))
        }
        return try start(f)
    }

    static func problems(_ o: Objects) -> [String] {
        var problems = IstioRules.problems(Objects(all: o.of("VirtualService") + o.of("Service")))
            .filter { !$0.contains("no header route") }
        for r in o.of("Rollout") {
            let name = Objects.name(r)
            let canary = r["spec"]?["strategy"]?["canary"]
            let steps = canary?["steps"]?.items ?? []
            let headerRoutes = steps.compactMap { $0["setHeaderRoute"]?["name"]?.text }
            let managed = Set(
                (canary?["trafficRouting"]?["managedRoutes"]?.items ?? []).compactMap { $0["name"]?.text })
            for h in headerRoutes where !managed.contains(h) {
                problems.append(
                    "Rollout \(name): setHeaderRoute \(h) is not in trafficRouting.managedRoutes (Argo refuses it)")
            }
            if headerRoutes.isEmpty {
                problems.append("Rollout \(name): no setHeaderRoute step (testers cannot reach it)")
            }
            for s in steps {
                if let w = s["setWeight"]?.int, !(0...100).contains(w) {
                    problems.append("Rollout \(name): setWeight \(w) is not a percentage")
                }
            }
            for key in ["canaryService", "stableService"] {
                let svc = canary?[key]?.text ?? ""
                if o.service(svc) == nil {
                    problems.append("Rollout \(name): \(key) \(svc) is no Service in the build")
                }
            }
            if let vs = canary?["trafficRouting"]?["istio"]?["virtualService"] {
                let vsName = vs["name"]?.text ?? ""
                if let v = o.named("VirtualService", vsName) {
                    let routes = Set((v["spec"]?["http"]?.items ?? []).compactMap { $0["name"]?.text })
                    for route in (vs["routes"]?.items ?? []).compactMap(\.text) where !routes.contains(route) {
                        problems.append("Rollout \(name): VirtualService \(vsName) has no route \(route)")
                    }
                } else {
                    problems.append("Rollout \(name): VirtualService \(vsName) is not in the build")
                }
            }
        }
        return problems
    }
}
