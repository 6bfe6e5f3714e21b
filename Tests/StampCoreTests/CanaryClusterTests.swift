import Foundation
import Testing
import TestSupport
import Yams

/// Issue 26: what the controllers, the kubelet and the app do with a canary folder, point by
/// point. Where no controller runs here, each test names the controller's documented rule it
/// checks (DESIGN.md's appendix has the sources); the folders are built by `kubectl kustomize`
/// as `kubectl apply -k` builds them.
@Suite("Canary on a cluster (issue 26)")
struct CanaryClusterTests {
    static let stableRef = "reg.corp/ai/anything-llm@sha256:" + String(repeating: "a", count: 64)
    static let canaryRef = "reg.corp/ai/anything-llm@sha256:" + String(repeating: "b", count: 64)
    static let nextRef = "reg.corp/ai/anything-llm@sha256:" + String(repeating: "c", count: 64)

    /// Renders a folder of the two digests (anything-llm's facts); returns it.
    func folder(_ extra: [String] = [], mesh: String = "istio", expect status: Int32 = 0) throws -> (String, RunResult)
    {
        let dir = try tempDir() + "/deploy"
        var args = [
            "canary", "render", "--stable", Self.stableRef, "--stable-version", "v2.0", "--canary", Self.canaryRef,
            "--canary-version", "v2.1-canary", "--profile", "anything-llm", "--host", "ai.corp.local", "--mesh", mesh,
            "--namespace", "ai", "--output", dir,
        ]
        if !extra.contains("--gateway") {
            args += ["--gateway", mesh == "gateway-api" ? "infra/public" : "istio-system/public"]
        }
        if !extra.contains("--canary-storage") { args += ["--canary-storage", "fresh"] }
        let r = try stamp(args + extra)
        #expect(r.status == status, "\(r.out)\(r.err)")
        return (dir, r)
    }

    func doc(_ dir: String, _ file: String) throws -> Node {
        try #require(try Yams.compose(yaml: try String(contentsOfFile: dir + "/" + file, encoding: .utf8)))
    }

    func text(_ dir: String, _ file: String) throws -> String {
        try String(contentsOfFile: dir + "/" + file, encoding: .utf8)
    }

    func write(_ dir: String, _ file: String, _ text: String) throws {
        try text.write(toFile: dir + "/" + file, atomically: true, encoding: .utf8)
    }

    /// What `kubectl apply -k` applies.
    func built(_ dir: String) throws -> [Node] {
        let b = try run(["kubectl", "kustomize", dir])
        try #require(b.status == 0, "\(b.err)")
        return try Yams.compose_all(yaml: b.out).map { $0 }
    }

    func check(_ dir: String) throws -> RunResult { try stamp(["canary", "check", dir]) }

    /// Adds a resource or a patch to kustomization.yaml.
    func kustomize(_ dir: String, _ yaml: String) throws {
        try write(dir, "kustomization.yaml", try text(dir, "kustomization.yaml") + yaml)
    }

    /// Two subtrees serialize alike (their text, not where they stood in a file).
    func same(_ a: Node?, _ b: Node?) throws -> Bool {
        guard let a, let b else { return false }
        return try Yams.serialize(node: a) == Yams.serialize(node: b)
    }

    func labels(_ n: Node?) -> [String: String] {
        var out: [String: String] = [:]
        for (k, v) in n?.mapping ?? [:] { out[k.string ?? ""] = v.string }
        return out
    }

    // MARK: 1. Istio: the split reaches the ingress

    /// Istio: a VirtualService without `gateways` applies to sidecars only (`mesh`); bound to
    /// the ingress Gateway and the mesh it serves the external host and the Service's name.
    @Test func point1IstioRoutesAreBoundToTheGatewayAndTheMesh() throws {
        let (dir, _) = try folder()
        let vs = try doc(dir, "virtualservice.yaml")
        #expect(vs["spec"]?["gateways"]?.sequence?.compactMap(\.string) == ["istio-system/public", "mesh"])
        #expect(vs["spec"]?["hosts"]?.sequence?.compactMap(\.string) == ["ai.corp.local", "anything-llm"])
        // Without --gateway: refused, with the reason.
        let (_, r) = try folder(["--gateway", "mesh"], expect: 0)
        #expect(r.status == 0)
        let dir2 = try tempDir() + "/d"
        let refused = try stamp([
            "canary", "render", "--stable", Self.stableRef, "--stable-version", "v2.0", "--canary", Self.canaryRef,
            "--canary-version", "v2.1", "--host", "ai.corp.local", "--canary-storage", "fresh", "--output", dir2,
        ])
        #expect(refused.status == 2 && refused.err.contains("ingress never splits"), "\(refused.err)")
        // A folder whose VirtualService lost its gateways is not a safe canary.
        try write(
            dir, "virtualservice.yaml",
            try text(dir, "virtualservice.yaml").replacingOccurrences(
                of: "  gateways:\n  - istio-system/public\n  - mesh\n", with: ""))
        let c = try check(dir)
        #expect(c.status == 1 && c.out.contains("has no gateways"), "\(c.out)")
    }

    // MARK: 2, 3, 4. Argo Rollouts

    /// Argo: a generic ephemeral volume is deleted with its pod. Each version gets a claim of
    /// its own, named in the template; check refuses ephemeral state.
    @Test func point2ArgoKeepsEachVersionsDataOnAClaim() throws {
        let (dir, _) = try folder(["--probe", "http"], mesh: "argo-rollouts")
        let rollout = try text(dir, "rollout.yaml")
        #expect(!rollout.contains("ephemeral"))
        let objects = try built(dir)
        let claims = objects.filter { $0["kind"]?.string == "PersistentVolumeClaim" }
        #expect(claims.count == 2)
        let r = try #require(objects.first { $0["kind"]?.string == "Rollout" })
        let claimName = r["spec"]?["template"]?["spec"]?["volumes"]?[0]?["persistentVolumeClaim"]?["claimName"]?.string
        #expect(claims.contains { $0["metadata"]?["name"]?.string == claimName })
        // The old shape is refused.
        try write(
            dir, "rollout.yaml",
            rollout.replacingOccurrences(
                of: "persistentVolumeClaim:\n          claimName: \(claimName!)",
                with: "ephemeral:\n          volumeClaimTemplate:\n            spec:\n              accessModes:\n"
                    + "              - ReadWriteOnce\n              resources:\n                requests:\n"
                    + "                  storage: 1Gi"))
        let c = try check(dir)
        #expect(c.status == 1 && c.out.contains("generic ephemeral volume"), "\(c.out)")
    }

    /// Argo: on a Rollout's first creation every step is skipped and the template becomes the
    /// stable at 100%, so the folder is rendered at the stable image (the canary recorded only).
    @Test func point3ArgoIsRenderedAtTheStableImage() throws {
        let (dir, r) = try folder(["--probe", "http"], mesh: "argo-rollouts")
        let rollout = try doc(dir, "rollout.yaml")
        let template = rollout["spec"]?["template"]
        #expect(template?["spec"]?["containers"]?[0]?["image"]?.string == Self.stableRef)
        #expect(labels(template?["metadata"]?["labels"])["version"] == "v2.0")
        #expect(r.out.contains("stamp canary start"))
        #expect(try stamp(["canary", "start", dir]).status == 0)
        #expect(
            try doc(dir, "rollout.yaml")["spec"]?["template"]?["spec"]?["containers"]?[0]?["image"]?.string
                == Self.canaryRef)
    }

    /// Argo: changing the steps resets the step index; promotion is `kubectl argo rollouts
    /// promote` (a status change). promote records, never edits steps or template; rollback puts
    /// the stable's template back (Argo returns to the stable ReplicaSet at once).
    @Test func point4ArgoPromoteIsTheControllersAndRollbackRestoresTheTemplate() throws {
        let (dir, _) = try folder(["--probe", "http"], mesh: "argo-rollouts")
        #expect(try stamp(["canary", "start", dir]).status == 0)
        let before = try doc(dir, "rollout.yaml")
        let p = try stamp(["canary", "promote", dir])
        #expect(p.status == 0, "\(p.err)")
        #expect(p.out.contains("kubectl argo rollouts promote anything-llm -n ai --full"), "\(p.out)")
        let after = try doc(dir, "rollout.yaml")
        #expect(try same(after["spec"]?["strategy"], before["spec"]?["strategy"]))
        #expect(try same(after["spec"]?["template"], before["spec"]?["template"]))
        #expect(after["metadata"]?["annotations"]?["stamp.dev/stable-version"]?.string == "v2.1-canary")
        // A rollback before promotion: the stable's image, version and claim again.
        let (dir2, _) = try folder(["--probe", "http"], mesh: "argo-rollouts")
        let atStable = try doc(dir2, "rollout.yaml")["spec"]?["template"]
        #expect(try stamp(["canary", "start", dir2]).status == 0)
        #expect(try stamp(["canary", "rollback", dir2]).status == 0)
        #expect(try same(try doc(dir2, "rollout.yaml")["spec"]?["template"], atStable))
    }

    // MARK: 5. Subsets by track

    /// Istio: DestinationRule subsets filter the Service's endpoints by their labels. After a
    /// promotion both Deployments run one version, so each subset must select by track.
    @Test func point5EachSubsetHoldsOneTrackAfterPromote() throws {
        let (dir, _) = try folder()
        #expect(try stamp(["canary", "promote", dir]).status == 0)
        let objects = try built(dir)
        let pods = objects.filter { $0["kind"]?.string == "Deployment" }.map {
            labels($0["spec"]?["template"]?["metadata"]?["labels"])
        }
        #expect(Set(pods.compactMap { $0["version"] }) == ["v2.1-canary"])
        let dr = try #require(objects.first { $0["kind"]?.string == "DestinationRule" })
        for subset in dr["spec"]?["subsets"]?.sequence ?? [] {
            let want = labels(subset["labels"])
            let selected = pods.filter { p in want.allSatisfy { p[$0.key] == $0.value } }
            #expect(selected.count == 1 && selected[0]["track"] == subset["name"]?.string)
        }
        // Subsets by version, as before: check finds both pods in one subset.
        try write(
            dir, "destinationrule.yaml",
            try text(dir, "destinationrule.yaml").replacingOccurrences(
                of: "track: stable", with: "version: v2.1-canary")
        )
        let c = try check(dir)
        #expect(c.status == 1 && c.out.contains("holds the pods of canary and stable"), "\(c.out)")
    }

    // MARK: 6. Sticky

    /// Flagger's session affinity: a cookie set on the weighted routes' answers, matched before
    /// the weights. Each version's cookie rule comes after the header route, before the split.
    @Test(arguments: ["istio", "gateway-api"])
    func point6AClientKeepsItsVersion(_ mesh: String) throws {
        let (dir, _) = try folder(mesh: mesh)
        if mesh == "istio" {
            let http = try doc(dir, "virtualservice.yaml")["spec"]?["http"]?.sequence ?? []
            #expect(
                http.compactMap { $0["name"]?.string } == ["canary-header", "sticky-stable", "sticky-canary", "split"])
            let regex = http[2]["match"]?[0]?["headers"]?["cookie"]?["regex"]?.string ?? ""
            // RE2 and Python's re agree on this pattern: it matches the canary's cookie only.
            let py = try run([
                "python3", "-c",
                "import re,sys; r=re.compile(sys.argv[1]); print([bool(r.fullmatch(c)) for c in sys.argv[2:]])",
                regex, "a=1; anything-llm-version=v2.1-canary", "anything-llm-version=v2.1-canary; b=2",
                "anything-llm-version=v2.0", "anything-llm-version=v2x1-canary",
            ])
            #expect(py.out.trimmingCharacters(in: .whitespacesAndNewlines) == "[True, True, False, False]")
            let split = http[3]["route"]?.sequence ?? []
            #expect(
                split.compactMap { $0["headers"]?["response"]?["add"]?["set-cookie"]?.string }.map {
                    String($0.prefix(while: { $0 != ";" }))
                } == ["anything-llm-version=v2.0", "anything-llm-version=v2.1-canary"])
        } else {
            let rules = try doc(dir, "httproute.yaml")["spec"]?["rules"]?.sequence ?? []
            #expect(rules.count == 4)
            #expect(rules[1]["matches"]?[0]?["headers"]?[0]?["type"]?.string == "RegularExpression")
            #expect(rules[3]["backendRefs"]?[1]?["filters"]?[0]?["type"]?.string == "ResponseHeaderModifier")
        }
        // Rollback: the canary's cookie holders go to stable too.
        #expect(try stamp(["canary", "rollback", dir]).status == 0)
        if mesh == "istio" {
            let http = try doc(dir, "virtualservice.yaml")["spec"]?["http"]?.sequence ?? []
            #expect(http[2]["route"]?.sequence?.compactMap { $0["weight"]?.int } == [100, 0])
        } else {
            let rules = try doc(dir, "httproute.yaml")["spec"]?["rules"]?.sequence ?? []
            #expect(rules[2]["backendRefs"]?.sequence?.compactMap { $0["weight"]?.int } == [100, 0])
        }
    }

    // MARK: 7. A guarded canary

    /// anything-llm keeps its users in its database: an empty canary without AUTH_TOKEN accepts
    /// every request. Fresh: AUTH_TOKEN is required from the Secret (the pod does not start
    /// without it); the header value can be a secret; a NetworkPolicy admits only the gateway.
    @Test func point7TheCanaryIsNotOpen() throws {
        func authOptional(_ dir: String) throws -> Bool? {
            let env = try doc(dir, "deployment-canary.yaml")["spec"]?["template"]?["spec"]?["containers"]?[0]?["env"]
            let auth = env?.sequence?.first { $0["name"]?.string == "AUTH_TOKEN" }
            return auth?["valueFrom"]?["secretKeyRef"]?["optional"]?.bool
        }
        let (fresh, _) = try folder()
        #expect(try authOptional(fresh) == nil)
        let (open, _) = try folder(["--allow-open-canary"])
        #expect(try authOptional(open) == true)
        #expect(try check(open).status == 0)
        // Hand-edited to optional without saying so: check refuses.
        try write(
            fresh, "deployment-canary.yaml",
            try text(fresh, "deployment-canary.yaml").replacingOccurrences(
                of: "key: AUTH_TOKEN\n", with: "key: AUTH_TOKEN\n              optional: true\n"))
        let c = try check(fresh)
        #expect(c.status == 1 && c.out.contains("accepts every request"), "\(c.out)")
        // The header's value from a file: in the route, never printed.
        let secret = try tempDir() + "/header"
        try "s3cr3t-Fl4g\n".write(toFile: secret, atomically: true, encoding: .utf8)
        let (guarded, r) = try folder(["--header", "x-canary-flag=@\(secret)"])
        #expect(!r.out.contains("s3cr3t") && !r.err.contains("s3cr3t"))
        #expect(try text(guarded, "virtualservice.yaml").contains("exact: s3cr3t-Fl4g\n"))
        // Only the gateway's namespace and the app's own reach the pods.
        let np = try doc(guarded, "networkpolicy.yaml")
        #expect(np["spec"]?["podSelector"]?["matchLabels"]?["app"]?.string == "anything-llm")
        let from = np["spec"]?["ingress"]?[0]?["from"]?.sequence ?? []
        #expect(
            from.contains {
                $0["namespaceSelector"]?["matchLabels"]?["kubernetes.io/metadata.name"]?.string == "istio-system"
            })
    }

    // MARK: 8. The next cycle

    /// A claim's spec is immutable: the next canary gets a claim of its own and no existing one
    /// changes; a user's edits in stamp's files stay byte for byte.
    @Test(arguments: ["istio", "gateway-api"])
    func point8TheNextCycleKeepsClaimsAndEdits(_ mesh: String) throws {
        let (dir, _) = try folder(["--canary-storage", "clone"], mesh: mesh)
        // A user's edits: a comment, more memory, a label.
        var canary = try text(dir, "deployment-canary.yaml")
        canary = canary.replacingOccurrences(of: "  replicas: 1\n", with: "  replicas: 1  # one writer\n")
        canary = canary.replacingOccurrences(of: "memory: 2Gi", with: "memory: 3Gi")
        canary = canary.replacingOccurrences(
            of: "    app.kubernetes.io/managed-by: stamp\nspec:",
            with: "    app.kubernetes.io/managed-by: stamp\n"
                + "    team: ai\nspec:")
        try write(dir, "deployment-canary.yaml", canary)
        let stableClaim = try text(dir, "storage-stable.yaml")
        let oldCanaryClaim = try doc(dir, "storage-canary.yaml")["metadata"]?["name"]?.string
        #expect(try stamp(["canary", "promote", dir]).status == 0)
        let n = try stamp(["canary", "next", "--canary", Self.nextRef, "--canary-version", "v2.2", dir])
        #expect(n.status == 0, "\(n.err)")
        #expect(try text(dir, "storage-stable.yaml") == stableClaim)
        let claim = try doc(dir, "storage-canary.yaml")
        let newName = claim["metadata"]?["name"]?.string
        #expect(newName != oldCanaryClaim && newName?.hasPrefix("anything-llm-canary-v2-2-") == true)
        #expect(claim["spec"]?["dataSource"]?["name"]?.string == "anything-llm-stable-storage")
        let now = try text(dir, "deployment-canary.yaml")
        #expect(
            now.contains("  replicas: 1  # one writer\n") && now.contains("memory: 3Gi") && now.contains("team: ai"))
        // Only the owned values changed.
        #expect(
            now.replacingOccurrences(of: Self.nextRef, with: Self.canaryRef)
                .replacingOccurrences(of: "v2.2", with: "v2.1-canary")
                .replacingOccurrences(of: newName!, with: oldCanaryClaim!) == canary)
        #expect(try check(dir).status == 0)
    }

    // MARK: 9. One writer per claim

    @Test func point9ReplicasAboveOneOnAClaimAreRefused() throws {
        let (_, r) = try folder(["--replicas", "3:2"], expect: 2)
        #expect(r.err.contains("stays Pending"), "\(r.err)")
        let (dir, _) = try folder(["--access-mode", "ReadWriteOncePod"])
        #expect(try doc(dir, "storage-canary.yaml")["spec"]?["accessModes"]?[0]?.string == "ReadWriteOncePod")
        try write(
            dir, "deployment-stable.yaml",
            try text(dir, "deployment-stable.yaml").replacingOccurrences(of: "  replicas: 1\n", with: "  replicas: 3\n")
        )
        let c = try check(dir)
        #expect(c.status == 1 && c.out.contains("3 replicas on claim"), "\(c.out)")
    }

    // MARK: 10. check reads what is applied

    /// Each way a folder can be unsafe on a cluster, made by a user's edit or a Kustomize
    /// patch, is found by check on the build.
    @Test(arguments: [
        "json6902-stable-claim", "name-prefix", "header-after-split", "header-to-stable", "httproute-no-header",
        "canary-service-stable-pods", "rollout-no-managed-routes", "two-literal-jwt", "canary-no-sig-key",
        "one-host-path", "one-nfs-export", "one-volume-name", "canary-no-storage",
    ])
    func point10CheckFindsWhatTheBuildApplies(_ name: String) throws {
        let mesh =
            name.hasPrefix("httproute") || name == "canary-service-stable-pods"
            ? "gateway-api"
            : name.hasPrefix("rollout") ? "argo-rollouts" : "istio"
        let (dir, _) = try folder(mesh == "argo-rollouts" ? ["--probe", "http"] : [], mesh: mesh)
        #expect(try check(dir).status == 0)
        func edit(_ file: String, _ from: String, _ to: String) throws {
            let t = try text(dir, file)
            try #require(t.contains(from), "\(file) has no \(from)")
            try write(dir, file, t.replacingOccurrences(of: from, with: to))
        }
        let claimLine = "persistentVolumeClaim:\n          claimName: "
        let expected: String
        switch name {
        case "json6902-stable-claim":
            try write(
                dir, "mount-stable.yaml",
                "- op: replace\n  path: /spec/template/spec/volumes/0/persistentVolumeClaim/claimName\n"
                    + "  value: anything-llm-stable-storage\n")
            try kustomize(
                dir,
                "patchesJson6902:\n- target:\n    group: apps\n    version: v1\n    kind: Deployment\n"
                    + "    name: anything-llm-canary\n  path: mount-stable.yaml\n")
            expected = "same claim anything-llm-stable-storage"
        case "name-prefix":
            try kustomize(dir, "namePrefix: team-\n")
            expected = "which no Service in the build is"
        case "header-after-split":
            var vs = try text(dir, "virtualservice.yaml")
            let header = vs.range(of: "  - name: canary-header\n")!.lowerBound
            let sticky = vs.range(of: "  - name: sticky-stable\n")!.lowerBound
            let block = String(vs[header..<sticky])
            vs.removeSubrange(header..<sticky)
            vs += block
            try write(dir, "virtualservice.yaml", vs)
            expected = "is never reached"
        case "header-to-stable":
            try edit(
                "virtualservice.yaml", "        subset: canary\n  - name: sticky-stable",
                "        subset: stable\n  - name: sticky-stable")
            expected = "header route canary-header sends requests to another subset"
        case "httproute-no-header":
            try edit("httproute.yaml", "        name: x-canary-flag\n", "        name: cookie\n")
            expected = "no header rule to the canary"
        case "canary-service-stable-pods":
            try edit("service-canary.yaml", "    track: canary\n", "    track: stable\n")
            expected = "Service anything-llm-canary selects anything-llm-stable's pods"
        case "rollout-no-managed-routes":
            try edit("rollout.yaml", "        managedRoutes:\n        - name: canary-header\n", "")
            expected = "not in trafficRouting.managedRoutes"
        case "two-literal-jwt":
            for (file, value) in [("deployment-stable.yaml", "one"), ("deployment-canary.yaml", "two")] {
                try edit(
                    file,
                    "        - name: JWT_SECRET\n          valueFrom:\n            secretKeyRef:\n"
                        + "              name: anything-llm-identity\n              key: JWT_SECRET\n",
                    "        - name: JWT_SECRET\n          value: \(value)\n")
            }
            expected = "JWT_SECRET comes from literal value #1 and literal value #2"
        case "canary-no-sig-key":
            try edit(
                "deployment-canary.yaml",
                "        - name: SIG_KEY\n          valueFrom:\n            secretKeyRef:\n"
                    + "              name: anything-llm-identity\n              key: SIG_KEY\n", "")
            expected = "anything-llm-canary does not read SIG_KEY"
        case "one-host-path", "one-nfs-export":
            let source =
                name == "one-host-path"
                ? "hostPath:\n          path: /srv/llm" : "nfs:\n          server: nas.corp\n          path: /llm"
            for file in ["deployment-stable.yaml", "deployment-canary.yaml"] {
                let t = try text(dir, file)
                let r = try #require(t.range(of: claimLine + "[a-z0-9-]+", options: .regularExpression))
                try write(dir, file, t.replacingCharacters(in: r, with: source))
            }
            expected = name == "one-host-path" ? "same host path /srv/llm" : "same NFS export nas.corp:/llm"
        case "one-volume-name":
            for file in ["storage-stable.yaml", "storage-canary.yaml"] {
                try edit(file, "spec:\n", "spec:\n  volumeName: pv-llm\n")
            }
            try edit("storage-canary.yaml", "stamp.dev/canary-storage: fresh", "stamp.dev/canary-storage: clone")
            expected = "same PersistentVolume pv-llm"
        default:  // canary-no-storage
            let t = try text(dir, "deployment-canary.yaml")
            let start = try #require(
                t.range(
                    of: "        volumeMounts:\n        - name: storage\n          mountPath: /app/server/storage\n"))
            try write(dir, "deployment-canary.yaml", t.replacingCharacters(in: start, with: "        volumeMounts:\n"))
            expected = "the canary keeps /app/server/storage on no volume of its own"
        }
        let c = try check(dir)
        #expect(c.status == 1 && c.out.contains(expected), "\(name): \(c.out)\(c.err)")
    }

    // MARK: 11. Rollback always writes

    /// Rollback only lowers exposure: a stray YAML file or a strategic-merge patch of the
    /// user's never stops it; what check dislikes becomes a warning.
    @Test func point11RollbackAlwaysWrites() throws {
        let (dir, _) = try folder()
        #expect(try stamp(["canary", "weight", "40", dir]).status == 0)
        // A strategic-merge patch with the user's limits (a partial Deployment, no image).
        try write(
            dir, "limits.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: anything-llm-canary\nspec:\n  template:\n"
                + "    spec:\n      containers:\n      - name: app\n        resources:\n          limits:\n"
                + "            memory: 4Gi\n")
        try kustomize(dir, "patchesStrategicMerge:\n- limits.yaml\n")
        // And a stray file, not listed, holding an unpinned Deployment of another app.
        try write(
            dir, "old-notes.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: scratch\nspec:\n  template:\n    spec:\n"
                + "      containers:\n      - name: x\n        image: busybox:latest\n")
        // The patch alone is fine on the build; the stray file only counts without kubectl.
        #expect(try check(dir).status == 0)
        // Made unsafe by hand: weight refuses, rollback writes and warns.
        try write(
            dir, "deployment-canary.yaml",
            try text(dir, "deployment-canary.yaml").replacingOccurrences(
                of: "name: anything-llm-identity\n              key: JWT_SECRET",
                with: "name: other-identity\n              key: JWT_SECRET"))
        #expect(try stamp(["canary", "weight", "50", dir]).status == 2)
        let rb = try stamp(["canary", "rollback", dir])
        #expect(rb.status == 0, "\(rb.err)")
        #expect(rb.err.contains("warning:") && rb.err.contains("JWT_SECRET"), "\(rb.err)")
        let split = try doc(dir, "virtualservice.yaml")["spec"]?["http"]?.sequence?.last
        #expect(split?["route"]?.sequence?.compactMap { $0["weight"]?.int } == [100, 0])
    }

    // MARK: 12. Gateway API parents and hosts

    @Test func point12GatewayRefsAndHosts() throws {
        let (dir, _) = try folder(["--gateway", "infra/public:https"], mesh: "gateway-api")
        let parent = try doc(dir, "httproute.yaml")["spec"]?["parentRefs"]?[0]
        #expect(parent?["name"]?.string == "public" && parent?["namespace"]?.string == "infra")
        #expect(parent?["sectionName"]?.string == "https")
        let root = try tempDir()
        let upper = try stamp([
            "canary", "render", "--stable", Self.stableRef, "--stable-version", "v2.0", "--canary", Self.canaryRef,
            "--canary-version", "v2.1", "--host", "AI.corp.local", "--mesh", "gateway-api", "--gateway", "infra/public",
            "--canary-storage", "fresh", "--output", root + "/d",
        ])
        #expect(upper.status == 2 && upper.err.contains("use ai.corp.local"), "\(upper.err)")
        #expect(!FileManager.default.fileExists(atPath: root + "/d"))
        try write(
            dir, "httproute.yaml",
            try text(dir, "httproute.yaml").replacingOccurrences(
                of: "  - name: public\n", with: "  - name: infra/public\n"))
        let c = try check(dir)
        #expect(c.status == 1 && c.out.contains("is not a Gateway name"), "\(c.out)")
    }

    // MARK: 13. Probes

    /// The kubelet kills a container whose startup probe fails: the budget covers migrations
    /// (5 minutes by default); liveness is not readiness.
    @Test func point13ProbesGiveTheAppTimeAndKillOnlyADeadOne() throws {
        let (dir, _) = try folder()
        let c = try doc(dir, "deployment-canary.yaml")["spec"]?["template"]?["spec"]?["containers"]?[0]
        let startup = c?["startupProbe"]
        #expect((startup?["periodSeconds"]?.int ?? 0) * (startup?["failureThreshold"]?.int ?? 0) >= 300)
        #expect(c?["livenessProbe"] != c?["readinessProbe"])
        #expect(c?["livenessProbe"]?["httpGet"]?["path"]?.string == "/api/ping")
        let (longer, _) = try folder(["--startup-budget", "15m"])
        let s2 = try doc(longer, "deployment-canary.yaml")["spec"]?["template"]?["spec"]?["containers"]?[0]?[
            "startupProbe"]
        #expect((s2?["periodSeconds"]?.int ?? 0) * (s2?["failureThreshold"]?.int ?? 0) >= 900)
    }

    // MARK: 15. The settings file

    /// anything-llm writes the settings made in its UI to /app/server/.env: it lives on the
    /// track's own claim, created empty before the app starts (a subPath of a missing file
    /// would become a folder).
    @Test func point15TheSettingsFileIsPersistedPerTrack() throws {
        let (dir, _) = try folder()
        for track in ["stable", "canary"] {
            let spec = try doc(dir, "deployment-\(track).yaml")["spec"]?["template"]?["spec"]
            let mounts = spec?["containers"]?[0]?["volumeMounts"]?.sequence ?? []
            let env = mounts.first { $0["mountPath"]?.string == "/app/server/.env" }
            #expect(env?["name"]?.string == "storage" && env?["subPath"]?.string == ".env")
            let initC = spec?["initContainers"]?[0]
            #expect(initC?["command"]?.sequence?.last?.string == "/stamp-storage/.env")
        }
    }
}
