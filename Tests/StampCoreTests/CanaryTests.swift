import Foundation
import Testing
import TestSupport
import Yams

/// `stamp canary`: manifests rendered from two stamped images pushed to Debian's
/// docker-registry, validated against the upstream schemas (Kubernetes v1.32, Istio, Gateway API,
/// Argo Rollouts; `Tests/UpstreamSchemas`) by check-jsonschema, built by `kubectl kustomize`, and
/// read back for what they mean; then weight, promote and rollback on a folder a user edited.
@Suite("Canary (stamp canary)")
struct CanaryTests {
    /// A stable (v2.0) and a canary (v2.1-canary) image in a registry, with their lock files.
    /// Made once under `shared`'s lock and only read after: the unchecked conformance is safe
    /// (the registry is held only to keep it running).
    final class Releases: @unchecked Sendable {
        let registry: TestRegistry
        let dir: String
        let stableLock: String
        let canaryLock: String
        let stableDigest: String
        let canaryDigest: String
        var name: String { "\(registry.host)/ai/anything-llm" }

        init() throws {
            registry = try TestRegistry()
            dir = try tempDir()
            let base = try sampleBase(dir)
            var digests: [String] = []
            for (version, lock) in [("v2.0", "stable"), ("v2.1-canary", "canary")] {
                let target = "docker://\(registry.host)/ai/anything-llm:\(version)"
                let r = try stamp(
                    [
                        "build", "--base", base, "--version", version, "--revision", "abc", "--output", target,
                        "--lock", "\(dir)/\(lock).lock.json", "--tls-verify=false",
                    ], env: ["SOURCE_DATE_EPOCH": "1743811200"])
                #expect(r.status == 0, "\(r.err)")
                // The digest as the registry serves it, read by skopeo, not by stamp.
                digests.append(try #require(try skopeoDigest(target, ["--tls-verify=false"])))
            }
            stableLock = dir + "/stable.lock.json"
            canaryLock = dir + "/canary.lock.json"
            stableDigest = digests[0]
            canaryDigest = digests[1]
        }

        static let shared = SharedFixture { try Releases() }
        static func get() throws -> Releases { try shared.get() }
    }

    static let schemas = repoRoot + "/Tests/UpstreamSchemas"
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().path + "/Fixtures"

    /// The upstream schema of a document's kind and version.
    static func schema(_ doc: Node) -> String? {
        switch (doc["apiVersion"]?.string, doc["kind"]?.string) {
        case ("apps/v1", "Deployment"): return schemas + "/kubernetes-v1.32/deployment-apps-v1.json"
        case ("v1", "Service"): return schemas + "/kubernetes-v1.32/service-v1.json"
        case ("v1", "PersistentVolumeClaim"): return schemas + "/kubernetes-v1.32/persistentvolumeclaim-v1.json"
        case ("networking.istio.io/v1", "VirtualService"): return schemas + "/crds/virtualservice-networking-v1.json"
        case ("networking.istio.io/v1", "DestinationRule"): return schemas + "/crds/destinationrule-networking-v1.json"
        case ("gateway.networking.k8s.io/v1", "HTTPRoute"): return schemas + "/crds/httproute-gateway-v1.json"
        case ("argoproj.io/v1alpha1", "Rollout"): return schemas + "/crds/rollout-argoproj-v1alpha1.json"
        case ("argoproj.io/v1alpha1", "AnalysisTemplate"):
            return schemas + "/crds/analysistemplate-argoproj-v1alpha1.json"
        default: return nil
        }
    }

    func render(_ r: Releases, _ dir: String, _ extra: [String]) throws -> RunResult {
        let gateway = extra.contains("--gateway") ? [] : ["--gateway", "istio-system/public"]
        return try stamp(
            [
                "canary", "render", "--stable", r.stableLock, "--canary", r.canaryLock, "--host", "ai.corp.local",
                "--weight", "5", "--namespace", "ai", "--output", dir,
            ] + gateway + extra)
    }

    func docs(_ dir: String) throws -> [String: Node] {
        var out: [String: Node] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: dir) where name.hasSuffix(".yaml") {
            out[name] = try Yams.compose(yaml: try String(contentsOfFile: dir + "/" + name, encoding: .utf8))
        }
        return out
    }

    static let meshes: [(String, [String])] = [
        ("istio", ["--canary-storage", "clone"]),
        ("gateway-api", ["--canary-storage", "fresh", "--gateway", "infra/public:https"]),
        ("argo-rollouts", ["--canary-storage", "fresh", "--probe", "http", "--prometheus", "http://prometheus:9090"]),
    ]

    @Test(arguments: meshes.map(\.0))
    func everyManifestIsValidUpstreamAndKustomizeBuildsTheFolder(_ mesh: String) throws {
        try #require(
            FileManager.default.fileExists(atPath: Self.schemas + "/README.md"),
            "the upstream schemas are not at \(Self.schemas)")
        let r = try Releases.get()
        let dir = try tempDir() + "/deploy"
        let extra = Self.meshes.first { $0.0 == mesh }!.1
        let rendered = try render(r, dir, ["--mesh", mesh] + extra)
        #expect(rendered.status == 0, "\(rendered.err)")
        let files = try docs(dir)
        let kinds = Set(files.values.compactMap { $0["kind"]?.string })
        let expected: Set<String> =
            switch mesh {
            case "istio":
                [
                    "Kustomization", "Deployment", "PersistentVolumeClaim", "Service", "DestinationRule",
                    "VirtualService", "NetworkPolicy",
                ]
            case "gateway-api":
                ["Kustomization", "Deployment", "PersistentVolumeClaim", "Service", "HTTPRoute", "NetworkPolicy"]
            default:
                [
                    "Kustomization", "Rollout", "PersistentVolumeClaim", "Service", "VirtualService", "NetworkPolicy",
                    "AnalysisTemplate",
                ]
            }
        #expect(kinds == expected)
        let checker = try pypiCommand("check-jsonschema", "check-jsonschema")
        let validator = try pypiCommand("kubernetes-validate", "kubernetes-validate")
        let strictDir = try tempDir()
        for (name, doc) in files.sorted(by: { $0.key < $1.key }) where doc["kind"]?.string != "Kustomization" {
            let apiVersion = doc["apiVersion"]?.string ?? ""
            if ["v1", "apps/v1", "networking.k8s.io/v1"].contains(apiVersion) {
                // Core kinds: Kubernetes' own OpenAPI, unknown fields refused.
                let v = try run([validator, "--strict", "-k", "1.32.0", dir + "/" + name])
                #expect(v.status == 0, "\(name): \(v.out)\(v.err)")
                if doc["kind"]?.string == "NetworkPolicy" { continue }
            }
            var schema = try #require(Self.schema(doc), "\(name): no upstream schema for its kind")
            if !apiVersion.hasSuffix("/v1") || apiVersion.contains(".io/") {
                // A CRD: its schema with additionalProperties: false wherever it lists properties
                // (the API server would prune an unknown field silently).
                let strict = strictDir + "/" + (schema as NSString).lastPathComponent
                if !FileManager.default.fileExists(atPath: strict) {
                    let s = try run(["python3", Self.fixtures + "/strict_schema.py", schema, strict])
                    #expect(s.status == 0, "\(s.err)")
                }
                schema = strict
            }
            let v = try run([checker, "--schemafile", schema, dir + "/" + name])
            #expect(v.status == 0, "\(name) against \(schema): \(v.out)\(v.err)")
        }
        let built = try run(["kubectl", "kustomize", dir])
        #expect(built.status == 0, "\(built.err)")
        let objects = try Yams.compose_all(yaml: built.out).map { $0 }
        #expect(objects.count == files.count - 1)
        #expect(objects.allSatisfy { $0["metadata"]?["namespace"]?.string == "ai" })
    }

    /// Issue 26, acceptance (b): checkov (PyPI) judges every mesh's Kustomize build (an Argo
    /// Rollout's pod template as a Deployment's, which checkov reads); the only failed checks are
    /// the ones the README lists, each with its reason.
    @Test(arguments: meshes.map(\.0))
    func checkovFindsOnlyTheListedExceptions(_ mesh: String) throws {
        let r = try Releases.get()
        let dir = try tempDir() + "/deploy"
        let extra = Self.meshes.first { $0.0 == mesh }!.1
        #expect(try render(r, dir, ["--mesh", mesh] + extra).status == 0)
        let built = try run(["kubectl", "kustomize", dir])
        try #require(built.status == 0, "\(built.err)")
        var docs = try Yams.compose_all(yaml: built.out).map { $0 }
        for (i, d) in docs.enumerated() where d["kind"]?.string == "Rollout" {
            var asDeployment = d
            asDeployment["apiVersion"] = Node("apps/v1")
            asDeployment["kind"] = Node("Deployment")
            var spec = asDeployment["spec"]!
            spec["strategy"] = nil
            asDeployment["spec"] = spec
            docs[i] = asDeployment
        }
        let file = dir + "-build.yaml"
        try docs.map { try Yams.serialize(node: $0) }.joined(separator: "---\n").write(
            toFile: file, atomically: true, encoding: .utf8)
        let checkov = try pypiCommand("checkov", "checkov")
        let c = try run([checkov, "-f", file, "--framework", "kubernetes", "--skip-download", "-o", "json"])
        let json = try JSONSerialization.jsonObject(with: Data(c.out.utf8))
        let reports = (json as? [[String: Any]]) ?? [(json as? [String: Any]) ?? [:]]
        var failed: Set<String> = []
        var passed = 0
        for report in reports {
            let results = report["results"] as? [String: Any] ?? [:]
            for f in results["failed_checks"] as? [[String: Any]] ?? [] {
                failed.insert(f["check_id"] as? String ?? "")
            }
            passed += ((report["summary"] as? [String: Any])?["passed"] as? Int) ?? 0
        }
        #expect(passed > 50, "checkov judged nothing: \(c.err.suffix(500))")
        let readme = try String(contentsOfFile: repoRoot + "/README.md", encoding: .utf8)
        let listed = Set(
            readme.split(separator: "\n").compactMap { line -> String? in
                guard line.hasPrefix("| CKV_K8S_") else { return nil }
                return line.dropFirst(2).split(separator: " ").first.map(String.init)
            })
        #expect(!listed.isEmpty, "the README lists no checkov exception")
        #expect(
            failed.isSubset(of: listed), "\(mesh): failed \(failed.subtracting(listed).sorted()), not in the README")
    }

    func images(_ d: Node?) -> [String] {
        (d?["spec"]?["template"]?["spec"]?["containers"]?.sequence ?? []).compactMap { $0["image"]?.string }
    }

    func podLabels(_ d: Node?) -> [String: String] {
        var out: [String: String] = [:]
        for (k, v) in d?["spec"]?["template"]?["metadata"]?["labels"]?.mapping ?? [:] { out[k.string!] = v.string }
        return out
    }

    func identitySecrets(_ d: Node?) -> [String: String] {
        var out: [String: String] = [:]
        for c in d?["spec"]?["template"]?["spec"]?["containers"]?.sequence ?? [] {
            for e in c["env"]?.sequence ?? [] {
                if let s = e["valueFrom"]?["secretKeyRef"]?["name"]?.string { out[e["name"]!.string!] = s }
            }
        }
        return out
    }

    @Test func theIstioFolderMeansWhatItShould() throws {
        let r = try Releases.get()
        let dir = try tempDir() + "/deploy"
        let rendered = try render(r, dir, ["--canary-storage", "clone"])
        #expect(rendered.status == 0, "\(rendered.err)")
        let f = try docs(dir)
        let stable = f["deployment-stable.yaml"], canary = f["deployment-canary.yaml"]
        // Pinned by the digests the registry serves (read by skopeo).
        #expect(images(stable) == ["\(r.name)@\(r.stableDigest)"])
        #expect(images(canary) == ["\(r.name)@\(r.canaryDigest)"])
        #expect(podLabels(stable)["version"] == "v2.0" && podLabels(canary)["version"] == "v2.1-canary")
        #expect(podLabels(canary)["app.kubernetes.io/version"] == "v2.1-canary")
        // Selectors select their own pods only.
        for d in [stable, canary] {
            let selector = d?["spec"]?["selector"]?["matchLabels"]?.mapping ?? [:]
            #expect(!selector.isEmpty && selector.allSatisfy { podLabels(d)[$0.key.string!] == $0.value.string })
        }
        #expect(podLabels(stable)["track"] != podLabels(canary)["track"])
        // Subsets are the two tracks (a label that never changes, unlike the version).
        let subsets = (f["destinationrule.yaml"]?["spec"]?["subsets"]?.sequence ?? []).map {
            ($0["name"]!.string!, $0["labels"]!["track"]!.string!)
        }
        #expect(subsets.map(\.0) == ["stable", "canary"] && subsets.map(\.1) == ["stable", "canary"])
        // Separate storage, the canary's cloned from the stable's.
        func claim(_ d: Node?) -> String? {
            d?["spec"]?["template"]?["spec"]?["volumes"]?[0]?["persistentVolumeClaim"]?["claimName"]?.string
        }
        #expect(claim(stable) != nil && claim(stable) != claim(canary))
        #expect(f["storage-canary.yaml"]?["spec"]?["dataSource"]?["name"]?.string == claim(stable))
        #expect(f["storage-stable.yaml"]?["spec"]?["dataSource"] == nil)
        // One Secret for the identity keys, in both.
        let keys = identitySecrets(stable)
        #expect(Set(keys.keys) == ["JWT_SECRET", "SIG_KEY", "SIG_SALT", "AUTH_TOKEN"])
        #expect(keys == identitySecrets(canary) && Set(keys.values) == ["anything-llm-identity"])
        // The health check as the readiness probe, at its pace.
        let readiness = stable?["spec"]?["template"]?["spec"]?["containers"]?[0]?["readinessProbe"]
        #expect(readiness?["exec"]?["command"]?[0]?.string == "/app/health-check-enhanced.sh")
        #expect(readiness?["periodSeconds"]?.int == 30 && readiness?["timeoutSeconds"]?.int == 10)
        #expect(readiness?["failureThreshold"]?.int == 3)
        // Header first, then the sticky cookies, then 95/5.
        let http = f["virtualservice.yaml"]?["spec"]?["http"]?.sequence ?? []
        #expect(http.count == 4)
        #expect(http.first?["match"]?[0]?["headers"]?["x-canary-flag"]?["exact"]?.string == "enabled")
        #expect(http.first?["route"]?[0]?["destination"]?["subset"]?.string == "canary")
        #expect((http.last?["route"]?.sequence ?? []).map { $0["weight"]?.int ?? -1 } == [95, 5])
        #expect(rendered.out.contains("kubectl apply -k"))
        // The machine form, against its schema.
        let j = try render(r, dir + "-json", ["--canary-storage", "fresh", "--json"])
        #expect(j.status == 0)
        #expect(try schemaComplaint(j.out, schema: "canary-render") == nil)
        #expect(j.out.contains("\"image\":\"\(r.name)@\(r.canaryDigest)\""))
    }

    /// weight, promote and rollback change their fields only; what a user added stays; the
    /// weights sum to 100 after each.
    @Test(arguments: ["istio", "gateway-api"])
    func weightPromoteRollbackKeepAUsersEdits(_ mesh: String) throws {
        let r = try Releases.get()
        let dir = try tempDir() + "/deploy"
        let extra = mesh == "istio" ? [] : ["--gateway", "infra/public"]
        #expect(try render(r, dir, ["--mesh", mesh, "--canary-storage", "fresh"] + extra).status == 0)
        // A user's edits: an annotation, resource limits, a file of their own.
        var stableText = try String(contentsOfFile: dir + "/deployment-stable.yaml", encoding: .utf8)
        stableText = stableText.replacingOccurrences(
            of: "metadata:\n  name: anything-llm-stable\n",
            with: "# Reviewed by the platform team.\nmetadata:\n  name: anything-llm-stable\n  annotations:\n"
                + "    team.corp/owner: ai-platform  # who to page\n")
        try stableText.write(toFile: dir + "/deployment-stable.yaml", atomically: true, encoding: .utf8)
        try "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: mine\ndata:\n  a: \"1\"\n".write(
            toFile: dir + "/mine.yaml", atomically: true, encoding: .utf8)
        let mine = try String(contentsOfFile: dir + "/mine.yaml", encoding: .utf8)

        func weights() throws -> [Int] {
            let f = try docs(dir)
            // The split is the last rule (after the header and the sticky cookies).
            if mesh == "istio" {
                return (f["virtualservice.yaml"]?["spec"]?["http"]?.sequence?.last?["route"]?.sequence ?? []).map {
                    $0["weight"]?.int ?? -1
                }
            }
            return (f["httproute.yaml"]?["spec"]?["rules"]?.sequence?.last?["backendRefs"]?.sequence ?? []).map {
                $0["weight"]?.int ?? -1
            }
        }
        func owner() throws -> String? {
            try docs(dir)["deployment-stable.yaml"]?["metadata"]?["annotations"]?["team.corp/owner"]?.string
        }
        #expect(try weights() == [95, 5])
        let w = try stamp(["canary", "weight", "25", dir, "--json"])
        #expect(w.status == 0, "\(w.err)")
        #expect(w.out.contains("\"weight\":25"))
        #expect(try schemaComplaint(w.out, schema: "canary-folder") == nil)
        #expect(try weights() == [75, 25])
        #expect(try owner() == "ai-platform")

        let p = try stamp(["canary", "promote", dir])
        #expect(p.status == 0, "\(p.err)")
        let f = try docs(dir)
        #expect(images(f["deployment-stable.yaml"]) == ["\(r.name)@\(r.canaryDigest)"])
        #expect(podLabels(f["deployment-stable.yaml"])["version"] == "v2.1-canary")
        #expect(podLabels(f["deployment-stable.yaml"])["track"] == "stable")
        if mesh == "istio" {
            #expect(f["destinationrule.yaml"]?["spec"]?["subsets"]?[0]?["labels"]?["track"]?.string == "stable")
        }
        #expect(try weights() == [100, 0])
        #expect(try owner() == "ai-platform")

        #expect(try stamp(["canary", "weight", "40", dir]).status == 0)
        let rb = try stamp(["canary", "rollback", dir])
        #expect(rb.status == 0, "\(rb.err)")
        #expect(try weights() == [100, 0])
        // The header route stays for testers.
        let after = try docs(dir)
        if mesh == "istio" {
            #expect(after["virtualservice.yaml"]?["spec"]?["http"]?[0]?["match"] != nil)
        } else {
            #expect(after["httproute.yaml"]?["spec"]?["rules"]?[0]?["matches"] != nil)
        }
        #expect(try String(contentsOfFile: dir + "/mine.yaml", encoding: .utf8) == mine)
        // Values are replaced where they stand: comments and the rest of each file stay.
        let stableNow = try String(contentsOfFile: dir + "/deployment-stable.yaml", encoding: .utf8)
        #expect(stableNow.contains("# Reviewed by the platform team.\n"))
        #expect(stableNow.contains("team.corp/owner: ai-platform  # who to page\n"))
        #expect(
            stableNow.replacingOccurrences(of: r.canaryDigest, with: r.stableDigest)
                .replacingOccurrences(of: "v2.1-canary", with: "v2.0") == stableText)
        #expect(try stamp(["canary", "check", dir]).status == 0)
        #expect(try run(["kubectl", "kustomize", dir]).status == 0)
    }

    /// Rendering again (another mesh): a resource a user listed stays listed, stamp's files of
    /// the earlier render that the new one does not write are gone.
    @Test func renderingAgainKeepsAUsersResources() throws {
        let r = try Releases.get()
        let dir = try tempDir() + "/deploy"
        #expect(try render(r, dir, ["--canary-storage", "fresh"]).status == 0)
        try "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: mine\n".write(
            toFile: dir + "/mine.yaml", atomically: true, encoding: .utf8)
        let k = try String(contentsOfFile: dir + "/kustomization.yaml", encoding: .utf8)
        try (k + "- mine.yaml\n").write(toFile: dir + "/kustomization.yaml", atomically: true, encoding: .utf8)
        let again = try render(
            r, dir, ["--canary-storage", "fresh", "--mesh", "gateway-api", "--gateway", "infra/public"])
        #expect(again.status == 0, "\(again.err)")
        let names = try FileManager.default.contentsOfDirectory(atPath: dir)
        #expect(!names.contains("destinationrule.yaml") && !names.contains("virtualservice.yaml"))
        #expect(names.contains("httproute.yaml") && names.contains("mine.yaml"))
        let built = try run(["kubectl", "kustomize", dir])
        #expect(built.status == 0 && built.out.contains("name: mine"), "\(built.err)")
        #expect(try stamp(["canary", "check", dir]).status == 0)
    }

    /// Argo Rollouts skips every step on a Rollout's creation, so the folder starts at the
    /// stable image; `start` changes the template; the steps are edited only before that.
    @Test func argoRolloutsStartsAtStableAndRollsBackByTemplate() throws {
        let r = try Releases.get()
        let dir = try tempDir() + "/deploy"
        #expect(try render(r, dir, ["--mesh", "argo-rollouts", "--canary-storage", "fresh"]).status == 0)
        func rollout() throws -> Node? { try docs(dir)["rollout.yaml"] }
        #expect(images(try rollout()) == ["\(r.name)@\(r.stableDigest)"])
        // Before start the canary gets nothing; the report says so, and what the step will give.
        let set = try stamp(["canary", "weight", "30", dir, "--json"])
        #expect(set.status == 0, "\(set.err)")
        #expect(try schemaComplaint(set.out, schema: "canary-folder") == nil)
        let report = try jsonOf(set.out)
        #expect(report["weight"]?.int64Value == 0 && report["firstStepWeight"]?.int64Value == 30, "\(set.out)")
        let steps = try rollout()?["spec"]?["strategy"]?["canary"]?["steps"]?.sequence ?? []
        #expect(steps.compactMap { $0["setWeight"]?.int } == [30])
        #expect(steps.first?["setHeaderRoute"]?["match"]?[0]?["headerName"]?.string == "x-canary-flag")
        let started = try stamp(["canary", "start", dir])
        #expect(started.status == 0, "\(started.err)")
        #expect(images(try rollout()).allSatisfy { $0 == "\(r.name)@\(r.canaryDigest)" })
        #expect(podLabels(try rollout())["version"] == "v2.1-canary")
        // A running canary's steps are the controller's.
        let w = try stamp(["canary", "weight", "50", dir])
        #expect(w.status == 2 && w.err.contains("kubectl argo rollouts promote"), "\(w.err)")
        #expect(try stamp(["canary", "rollback", dir]).status == 0)
        #expect(images(try rollout()).allSatisfy { $0 == "\(r.name)@\(r.stableDigest)" })
        #expect(podLabels(try rollout())["version"] == "v2.0")
    }

    /// Issue 26, point 13: render probes what the build recorded. A build with --health-port
    /// 8080 is probed and served on 8080; a generic build without the stamped script gets no
    /// exec probe of a script it lacks (and the port it serves on must be said).
    @Test func probesFollowWhatTheBuildRecorded() throws {
        let r = try Releases.get()
        let root = try tempDir()
        let base = try sampleBase(root)
        func build(_ version: String, _ extra: [String]) throws -> String {
            let lock = root + "/\(version).lock.json"
            let b = try stamp(
                [
                    "build", "--base", base, "--version", version, "--output",
                    "docker://\(r.registry.host)/ai/anything-llm:\(version)", "--lock", lock, "--tls-verify=false",
                ] + extra, env: ["SOURCE_DATE_EPOCH": "1743811200"])
            try #require(b.status == 0, "\(b.err)")
            return lock
        }
        let port = try build("v2.2-port", ["--health-port", "8080"])
        let facts =
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: port))) as? [String: Any]
        #expect(((facts?["output"] as? [String: Any])?["app"] as? [String: Any])?["port"] as? Int == 8080)
        let dir = root + "/port"
        let rendered = try stamp([
            "canary", "render", "--stable", r.stableLock, "--canary", port, "--host", "ai.corp.local",
            "--gateway", "istio-system/public", "--canary-storage", "fresh", "--output", dir,
        ])
        try #require(rendered.status == 0, "\(rendered.err)")
        let c = try docs(dir)["deployment-canary.yaml"]?["spec"]?["template"]?["spec"]?["containers"]?[0]
        #expect(c?["ports"]?[0]?["containerPort"]?.int == 8080)
        #expect(c?["livenessProbe"]?["httpGet"]?["port"]?.int == 8080)
        #expect(c?["env"]?.sequence?.first { $0["name"]?.string == "SERVER_PORT" }?["value"]?.string == "8080")

        let generic = try build("v3-generic", ["--profile", "generic", "--version-json", "/version.json"])
        let args = [
            "canary", "render", "--stable", "\(r.name)@\(r.stableDigest)", "--stable-version", "v2.0", "--canary",
            generic, "--host", "ai.corp.local", "--gateway", "istio-system/public", "--canary-storage", "fresh",
        ]
        let unknown = try stamp(args + ["--output", root + "/g0"])
        #expect(unknown.status == 2 && unknown.err.contains("--health-port"), "\(unknown.err)")
        let exec = try stamp(args + ["--probe", "exec", "--health-port", "8080", "--output", root + "/g1"])
        #expect(exec.status == 2 && exec.err.contains("no stamped health-check script"), "\(exec.err)")
        let ok = try stamp(args + ["--health-port", "8080", "--health-path", "/healthz", "--output", root + "/g2"])
        try #require(ok.status == 0, "\(ok.err)")
        let text = try String(contentsOfFile: root + "/g2/deployment-canary.yaml", encoding: .utf8)
        #expect(!text.contains("exec:") && text.contains("path: /healthz"))
    }

    /// What would make an unsafe canary is refused with one line, and nothing is written.
    @Test func unsafeCanariesAreRefused() throws {
        let r = try Releases.get()
        let root = try tempDir()
        func refused(_ args: [String], _ text: String) throws {
            let dir = root + "/d-\(UUID().uuidString)"
            let x = try stamp(["canary", "render", "--host", "ai.corp.local", "--output", dir] + args)
            #expect(x.status == 2 && x.err.contains(text), "\(args): \(x.err)")
            #expect(x.err.split(separator: "\n").count == 1, "\(x.err)")
            #expect(!FileManager.default.fileExists(atPath: dir))
        }
        let both = ["--stable", r.stableLock, "--canary", r.canaryLock]
        try refused(both, "--canary-storage: choose fresh")
        try refused(
            [
                "--stable", "\(r.name):v2.0", "--stable-version", "v2.0", "--canary", r.canaryLock, "--canary-storage",
                "fresh",
            ],
            "no digest")
        try refused(both + ["--canary-storage", "fresh", "--gateway", "none/"], "--gateway's name")
        try refused(both + ["--canary-storage", "fresh", "--mesh", "gateway-api"], "--gateway")
        try refused(
            ["--stable", r.stableLock, "--canary", r.stableLock, "--canary-storage", "fresh"], "both version v2.0")
        try refused(
            [
                "--stable", r.stableLock, "--canary", "\(r.name)@\(r.canaryDigest)", "--canary-version", "2.1+build",
                "--canary-storage", "fresh",
            ], "cannot be a Kubernetes label value")
        // A lock of a local archive: nothing a cluster can pull.
        let local = root + "/local.lock.json"
        let base = try sampleBase(root)
        #expect(
            try stamp(["build", "--base", base, "--version", "v3", "--output", root + "/o.tar", "--lock", local])
                .status == 0)
        try refused(["--stable", r.stableLock, "--canary", local, "--canary-storage", "fresh"], "cannot pull")
        // A tag is taken when asked.
        let tagged = root + "/tagged"
        let t = try stamp([
            "canary", "render", "--host", "ai.corp.local", "--output", tagged, "--stable", r.stableLock,
            "--canary", "\(r.name):v2.1-canary", "--canary-version", "v2.1-canary", "--canary-storage", "fresh",
            "--allow-tag", "--gateway", "istio-system/public",
        ])
        #expect(t.status == 0, "\(t.err)")
        #expect(try stamp(["canary", "check", tagged]).status == 1)
        #expect(try stamp(["canary", "check", tagged, "--allow-tag"]).status == 0)
    }

    /// A folder edited into an unsafe state is refused by every command that writes, and
    /// reported by check.
    @Test func anUnsafeEditIsNeverWrittenOver() throws {
        let r = try Releases.get()
        let dir = try tempDir() + "/deploy"
        #expect(try render(r, dir, ["--canary-storage", "fresh"]).status == 0)
        let path = dir + "/deployment-canary.yaml"
        var text = try String(contentsOfFile: path, encoding: .utf8)
        text = text.replacingOccurrences(
            of: #"claimName: anything-llm-canary-[a-z0-9-]+"#, with: "claimName: anything-llm-stable-storage",
            options: .regularExpression)
        text = text.replacingOccurrences(of: "name: anything-llm-identity", with: "name: other-identity")
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let vs = try String(contentsOfFile: dir + "/virtualservice.yaml", encoding: .utf8)
        let w = try stamp(["canary", "weight", "50", dir])
        #expect(w.status == 2 && w.err.contains("same claim anything-llm-stable-storage"), "\(w.err)")
        #expect(w.err.split(separator: "\n").count == 1, "\(w.err)")
        #expect(try String(contentsOfFile: dir + "/virtualservice.yaml", encoding: .utf8) == vs)
        let c = try stamp(["canary", "check", dir, "--json"])
        #expect(c.status == 1)
        #expect(try schemaComplaint(c.out, schema: "canary-check") == nil)
        #expect(
            c.out.contains("same claim")
                && c.out.contains("JWT_SECRET comes from Secret anything-llm-identity and Secret other-identity"))
    }
}
