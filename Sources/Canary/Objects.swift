import Foundation
import OCI
import Yams

/// The objects a folder applies (the Kustomize build, or its files where no `kubectl` is at
/// hand), and the rules every mesh shares: what a canary must be to be safe on a cluster.
struct Objects {
    var all: [Node]

    func of(_ kind: String) -> [Node] { all.filter { $0["kind"]?.text == kind } }

    func named(_ kind: String, _ name: String) -> Node? {
        of(kind).first { $0["metadata"]?["name"]?.text == name }
    }

    static func name(_ n: Node) -> String { n["metadata"]?["name"]?.text ?? "(unnamed)" }

    /// A Service of this name in the build, by a short name or an in-cluster DNS name.
    func service(_ host: String) -> Node? {
        let short = host.split(separator: ".").first.map(String.init) ?? host
        let dotted = host.contains(".")
        guard !dotted || host.hasSuffix(".svc.cluster.local") || host.split(separator: ".").count == 2 else {
            return nil
        }
        return of("Service").first { Self.name($0) == short }
    }

    /// Workloads (Deployments and Rollouts) with their pod template and track.
    struct Workload {
        var node: Node
        var name: String
        var kind: String
        var template: Node?
        var track: String?
        var podLabels: [String: String]
        var containers: [Node]
        var replicas: Int
    }

    var workloads: [Workload] {
        (of("Deployment") + of("Rollout")).map { d in
            let template = d["spec"]?["template"]
            var labels: [String: String] = [:]
            for (k, v) in template?["metadata"]?["labels"]?.mapping ?? [:] { labels[k.text ?? ""] = v.text }
            let containers =
                (template?["spec"]?["initContainers"]?.items ?? []) + (template?["spec"]?["containers"]?.items ?? [])
            return Workload(
                node: d, name: Self.name(d), kind: d["kind"]?.text ?? "", template: template,
                track: labels["track"], podLabels: labels, containers: containers,
                replicas: d["spec"]?["replicas"]?.int ?? 1)
        }
    }

    static func labels(_ n: Node?) -> [String: String] {
        var out: [String: String] = [:]
        for (k, v) in n?.mapping ?? [:] { out[k.text ?? ""] = v.text ?? "" }
        return out
    }

    static func selects(_ selector: [String: String], _ labels: [String: String]) -> Bool {
        !selector.isEmpty && selector.allSatisfy { labels[$0.key] == $0.value }
    }

    /// Keys that make an app's identity, from the known profiles (the same list build records).
    static let identityKeys: Set<String> = Set(
        AppFacts.known.flatMap { $0.identityKeys + $0.optionalIdentityKeys })
    static let authKeys: Set<String> = Set(AppFacts.known.compactMap(\.authKey))

    // MARK: - What every mesh shares

    func commonProblems(allowTag: Bool) -> [String] {
        var problems: [String] = []
        let workloads = self.workloads
        if workloads.isEmpty { problems.append("no Deployment or Rollout: nothing runs") }
        var sources: [String: [String: Set<String>]] = [:]  // key → workload → sources
        var literalIDs: [String: Int] = [:]
        for w in workloads {
            for c in w.containers {
                let image = c["image"]?.text ?? ""
                if !allowTag && !CanaryFolder.pinned(image) {
                    problems.append("\(w.name) runs \(image), not pinned by digest (NAME@sha256:…)")
                }
            }
            for c in w.template?["spec"]?["containers"]?.items ?? [] {
                for e in c["env"]?.items ?? [] {
                    guard let key = e["name"]?.text, Self.identityKeys.contains(key) else { continue }
                    let source: String
                    if let s = e["valueFrom"]?["secretKeyRef"]?["name"]?.text {
                        source = "Secret \(s)"
                    } else {
                        // A literal is named by its place among the literals seen, never printed.
                        let value = e["value"]?.text ?? ""
                        let id = literalIDs[value] ?? (literalIDs.count + 1)
                        literalIDs[value] = id
                        source = "literal value #\(id)"
                    }
                    sources[key, default: [:]][w.name, default: []].insert(source)
                }
            }
            if w.kind == "Deployment" && w.podLabels["track"] == nil {
                problems.append("\(w.name): its pods have no track label (stable or canary)")
            }
            let selector = Self.labels(w.node["spec"]?["selector"]?["matchLabels"])
            for (k, v) in selector.sorted(by: { $0.key < $1.key }) where w.podLabels[k] != v {
                problems.append("\(w.name)'s selector \(k)=\(v) is not on its pods")
            }
        }
        // One Secret for each identity key, read by every workload.
        for (key, byWorkload) in sources.sorted(by: { $0.key < $1.key }) {
            let all = Set(byWorkload.values.flatMap { $0 })
            if all.count > 1 {
                problems.append(
                    "\(key) comes from \(all.sorted().joined(separator: " and ")): both versions must read it from "
                        + "one Secret, or a session opened on one is refused by the other")
            }
            let optionalKey = Self.authKeys.contains(key)
            for w in workloads where byWorkload[w.name] == nil && !optionalKey {
                problems.append(
                    "\(w.name) does not read \(key), which \(byWorkload.keys.sorted().joined(separator: ", ")) reads: "
                        + "sessions signed by one version are refused by the other")
            }
        }
        problems += storageProblems(workloads)
        problems += serviceProblems(workloads)
        return problems
    }

    /// Where a volume's bytes live: a claim (and its bound volume), a host path, an NFS export.
    func identities(_ volume: Node) -> [String] {
        if let claim = volume["persistentVolumeClaim"]?["claimName"]?.text {
            var ids = ["claim \(claim)"]
            if let pv = named("PersistentVolumeClaim", claim)?["spec"]?["volumeName"]?.text {
                ids.append("PersistentVolume \(pv)")
            }
            return ids
        }
        if let p = volume["hostPath"]?["path"]?.text { return ["host path \(p)"] }
        if let s = volume["nfs"]?["server"]?.text { return ["NFS export \(s):\(volume["nfs"]?["path"]?.text ?? "/")"] }
        return []
    }

    func storageProblems(_ workloads: [Workload]) -> [String] {
        var problems: [String] = []
        var owners: [String: String] = [:]  // identity → "workload (track)"
        var persistentPaths: [String: Set<String>] = [:]  // track → mount paths on persistent volumes
        for w in workloads {
            let volumes = w.template?["spec"]?["volumes"]?.items ?? []
            var persistent: [String: [String]] = [:]  // volume name → identities
            for v in volumes {
                let name = v["name"]?.text ?? ""
                if v["ephemeral"] != nil {
                    problems.append(
                        "\(w.name): volume \(name) is a generic ephemeral volume, deleted with its pod: data kept "
                            + "there is lost at every restart, eviction or promotion; use a claim of its own")
                }
                let ids = identities(v)
                if !ids.isEmpty { persistent[name] = ids }
            }
            let track = w.track ?? w.name
            // In a Rollout both tracks run from one template: the claim is the version's own.
            for ids in persistent.values {
                for id in ids {
                    if let other = owners[id], other != "\(w.name) (\(track))" {
                        problems.append(
                            "\(w.name) (\(track)) and \(other) use the same \(id): the canary must never write the "
                                + "stable's data")
                    }
                    owners[id] = "\(w.name) (\(track))"
                }
            }
            for c in w.template?["spec"]?["containers"]?.items ?? [] {
                for m in c["volumeMounts"]?.items ?? [] where persistent[m["name"]?.text ?? ""] != nil {
                    persistentPaths[track, default: []].insert(m["mountPath"]?.text ?? "")
                }
            }
            // One writer per ReadWriteOnce(Pod) claim.
            if w.replicas > 1 {
                for v in volumes {
                    guard let claim = v["persistentVolumeClaim"]?["claimName"]?.text else { continue }
                    let modes = (named("PersistentVolumeClaim", claim)?["spec"]?["accessModes"]?.items ?? [])
                        .compactMap(\.text)
                    if modes.isEmpty || modes.contains(where: { $0 == "ReadWriteOnce" || $0 == "ReadWriteOncePod" }) {
                        problems.append(
                            "\(w.name): \(w.replicas) replicas on claim \(claim) (\(modes.first ?? "ReadWriteOnce")): "
                                + "pods on another node stay Pending and two processes would write one database; "
                                + "1 replica per claim")
                    }
                }
            }
        }
        if let stable = persistentPaths["stable"] {
            let canary = persistentPaths["canary"] ?? []
            let hasCanary = workloads.contains { $0.track == "canary" }
            for path in stable.subtracting(canary).sorted() where hasCanary {
                problems.append(
                    "the canary keeps \(path) on no volume of its own (the stable does): its data is lost with its "
                        + "pod")
            }
        }
        return problems
    }

    /// Services select pods that exist, and a track's Service only that track's pods.
    func serviceProblems(_ workloads: [Workload]) -> [String] {
        var problems: [String] = []
        let argoServices = Set(
            of("Rollout").flatMap { r in
                ["canaryService", "stableService"].compactMap { r["spec"]?["strategy"]?["canary"]?[$0]?.text }
            })
        for svc in of("Service") {
            let name = Self.name(svc)
            let selector = Self.labels(svc["spec"]?["selector"])
            let matched = workloads.filter { Self.selects(selector, $0.podLabels) }
            if matched.isEmpty {
                problems.append("Service \(name) selects no pods")
                continue
            }
            if argoServices.contains(name) { continue }  // Argo adds the ReplicaSet's hash to these.
            for track in ["stable", "canary"] where name.hasSuffix("-\(track)") {
                for w in matched where w.track != track {
                    problems.append("Service \(name) selects \(w.name)'s pods (track \(w.track ?? "none"))")
                }
            }
        }
        return problems
    }

    /// The weighted routes of a traffic split: none means no split.
    func noSplit() -> [String] {
        of("VirtualService").isEmpty && of("HTTPRoute").isEmpty && of("Rollout").isEmpty
            ? ["no VirtualService, HTTPRoute or Rollout: no traffic split at all"] : []
    }

    /// A fresh canary of an app whose users live in its database, without the auth key
    /// required: it accepts every request. (`--allow-open-canary` marks it as meant.)
    func openCanaryProblems() -> [String] {
        var problems: [String] = []
        for w in workloads where w.track == "canary" || w.kind == "Rollout" {
            let annotations = Self.labels(w.template?["metadata"]?["annotations"])
            if annotations[StampKeys.openCanary] == "true" { continue }
            let claims = (w.template?["spec"]?["volumes"]?.items ?? []).compactMap {
                $0["persistentVolumeClaim"]?["claimName"]?.text
            }
            let fresh = claims.contains { named("PersistentVolumeClaim", $0)?["spec"]?["dataSource"] == nil }
            guard fresh, w.kind != "Rollout" else { continue }
            for c in w.template?["spec"]?["containers"]?.items ?? [] {
                for e in c["env"]?.items ?? [] {
                    guard let key = e["name"]?.text, Self.authKeys.contains(key) else { continue }
                    if e["valueFrom"]?["secretKeyRef"]?["optional"]?.bool == true {
                        problems.append(
                            "\(w.name) starts with empty storage and \(key) optional: an empty instance accepts "
                                + "every request; require \(key) in the Secret (or render with --allow-open-canary)")
                    }
                }
            }
        }
        return problems
    }
}
