import Foundation
import OCI
import Testing
import TestSupport
import Yams

extension RuntimeTests {
    /// Issue 26, acceptance (a): `podman kube play` (Debian's podman 4.3) runs the Deployments,
    /// claims and Secret of a rendered folder's Kustomize build, with two stamped Node images
    /// (uid 1000) pulled by digest from Debian's docker-registry: both pods come up through the
    /// rendered probes, each writes only its own volume, both read the one Secret, and
    /// /version.json names each version; again after promote and after next. What podman 4.3
    /// cannot take is changed by Fixtures/kube_play_adapter.py, which says what and why.
    @Suite struct CanaryPodmanTests {
        static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().path + "/Fixtures"
        let dir: String
        init() throws { dir = try tempDir() }

        func podman(_ args: [String]) throws -> RunResult {
            try run(Runtime.podman + args, env: ["CONTAINERS_CONF": dir + "/containers.conf"])
        }

        /// Plays one Deployment's file. podman 4.3 races removing an init container that has
        /// just exited ("failed to remove once init container ... as it is running"); the pod
        /// is then left with its app container created (the init container did its work):
        /// starting that container is what kube play would have done next.
        func play(_ file: String, pod: String) throws {
            let r = try podman(["kube", "play", "--replace", "--tls-verify=false", file])
            guard r.status != 0 else { return }
            try #require(r.err.contains("init container"), "podman kube play \(file): \(r.err.suffix(1500))")
            var last = ""
            for _ in 0..<20 {
                let s = try podman(["start", pod + "-app"])
                if s.status == 0 { return }
                last = s.err
                Thread.sleep(forTimeInterval: 0.5)
            }
            Issue.record("podman start \(pod)-app: \(last.suffix(800))")
        }

        /// The rendered probes of a Deployment, run in its pod: liveness through podman's own
        /// health check (podman 4.3 turns the livenessProbe into it), readiness by its exec
        /// command as the kubelet would run it. True when both pass within `seconds`.
        func ready(_ pod: String, readiness: [String], seconds: Double = 60) throws -> Bool {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                let live = try podman(["healthcheck", "run", pod + "-app"])
                let ready = try podman(["exec", pod + "-app"] + readiness)
                if live.status == 0 && ready.status == 0 { return true }
                Thread.sleep(forTimeInterval: 1)
            }
            return false
        }

        func exec(_ pod: String, _ script: String) throws -> String {
            let r = try podman(["exec", pod + "-app", "sh", "-c", script])
            #expect(r.status == 0, "\(pod): \(script): \(r.err)")
            return r.out.trimmingCharacters(in: .whitespacesAndNewlines)
        }

        func version(_ pod: String) throws -> String? {
            let body = try exec(pod, "curl -fsS http://127.0.0.1:${SERVER_PORT}/version.json")
            return try JSONValue.parse(Array(body.utf8))["version"]?.stringValue
        }

        /// A volume's folder on this machine, and the files in it with their owners.
        func volumeFiles(_ claim: String) throws -> [String: String] {
            let m = try podman(["volume", "inspect", claim, "--format", "{{.Mountpoint}}"])
            try #require(m.status == 0, "no volume \(claim): \(m.err)")
            let path = m.out.trimmingCharacters(in: .whitespacesAndNewlines)
            var out: [String: String] = [:]
            for name in try FileManager.default.contentsOfDirectory(atPath: path) {
                let a = try FileManager.default.attributesOfItem(atPath: path + "/" + name)
                let content = (try? String(contentsOfFile: path + "/" + name, encoding: .utf8)) ?? ""
                out[name] = "\((a[.ownerAccountID] as? NSNumber)?.intValue ?? -1):\(content)"
            }
            return out
        }

        /// Builds the folder, adapts it, and plays each Deployment; returns the build's objects.
        func apply(_ folder: String, secret: [String: String]) throws -> [Node] {
            let built = try run(["kubectl", "kustomize", folder])
            try #require(built.status == 0, "\(built.err)")
            let buildFile = dir + "/build-\(UUID().uuidString).yaml"
            try built.out.write(toFile: buildFile, atomically: true, encoding: .utf8)
            let out = dir + "/play-\(UUID().uuidString)"
            let volumes = try podman(["volume", "ls", "--format", "{{.Name}}"]).out.split(separator: "\n")
                .joined(separator: ",")
            let a = try run(
                ["python3", Self.fixtures + "/kube_play_adapter.py", buildFile, out, "anything-llm-identity", volumes]
                    + secret.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" })
            try #require(a.status == 0, "\(a.err)")
            _ = try podman(["secret", "rm", "anything-llm-identity"])
            let s = try podman(["secret", "create", "anything-llm-identity", out + "/secret.json"])
            try #require(s.status == 0, "\(s.err)")
            for name in a.out.split(separator: "\n").map(String.init) {
                try play(out + "/" + name + ".yaml", pod: name + "-pod-0")
            }
            return try Yams.compose_all(yaml: built.out).map { $0 }
        }

        func claim(_ objects: [Node], _ deployment: String) -> String? {
            objects.first { $0["kind"]?.string == "Deployment" && $0["metadata"]?["name"]?.string == deployment }?[
                "spec"]?["template"]?["spec"]?["volumes"]?[0]?["persistentVolumeClaim"]?["claimName"]?.string
        }

        func readiness(_ objects: [Node], _ deployment: String) -> [String] {
            let d = objects.first { $0["metadata"]?["name"]?.string == deployment }
            return
                (d?["spec"]?["template"]?["spec"]?["containers"]?[0]?["readinessProbe"]?["exec"]?["command"]?
                .sequence ?? []).compactMap(\.string)
        }

        @Test func podmanKubePlayRunsBothVersionsApartThroughPromoteAndNext() throws {
            try "[containers]\ndefault_ulimits = [\"nofile=4096:4096\", \"nproc=4096:4096\"]\n".write(
                toFile: dir + "/containers.conf", atomically: true, encoding: .utf8)
            let base = try Runtime.base("node")
            let registry = try TestRegistry()
            var locks: [String: String] = [:]
            for v in ["v2.0", "v2.1-canary", "v2.2"] {
                let lock = dir + "/\(v).lock.json"
                let b = try stamp(
                    [
                        "build", "--base", "docker-archive:" + base, "--version", v, "--output",
                        "docker://\(registry.host)/ai/app:\(v)", "--lock", lock, "--tls-verify=false",
                        "--health-interval", "2s", "--health-timeout", "5s", "--health-retries", "2",
                        "--health-start-period", "0s",
                    ], env: ["SOURCE_DATE_EPOCH": "1743811200"])
                try #require(b.status == 0, "\(b.err)")
                locks[v] = lock
            }
            let folder = dir + "/deploy"
            let r = try stamp([
                "canary", "render", "--stable", locks["v2.0"]!, "--canary", locks["v2.1-canary"]!, "--host", "ai.local",
                "--gateway", "istio-system/public", "--canary-storage", "fresh", "--memory", "64Mi:256Mi", "--cpu",
                "50m:500m", "--output", folder,
            ])
            try #require(r.status == 0, "\(r.err)")
            let secret = [
                "JWT_SECRET": "jwt-0123456789abcdef", "SIG_KEY": "sig-key-0123456789", "SIG_SALT": "sig-salt-012345",
                "AUTH_TOKEN": "canary-password",
            ]
            _ = try podman(["pod", "rm", "-a", "-f", "-t", "0"])
            _ = try podman(["volume", "prune", "-f"])
            defer {
                _ = try? podman(["pod", "rm", "-a", "-f", "-t", "0"])
                _ = try? podman(["volume", "prune", "-f"])
                _ = try? podman(["secret", "rm", "anything-llm-identity"])
            }
            var objects = try apply(folder, secret: secret)
            let stablePod = "anything-llm-stable-pod-0", canaryPod = "anything-llm-canary-pod-0"
            for (pod, deployment) in [(stablePod, "anything-llm-stable"), (canaryPod, "anything-llm-canary")] {
                #expect(try ready(pod, readiness: readiness(objects, deployment)), "\(pod) never became ready")
                #expect(try exec(pod, "id -u") == "1000")
                // Both read the one Secret.
                #expect(
                    try exec(pod, "printf %s \"$JWT_SECRET:$AUTH_TOKEN\"") == "jwt-0123456789abcdef:canary-password")
                // Each writes into its own data folder.
                _ = try exec(pod, "printf %s \(deployment) > \"$STORAGE_DIR/who\"")
            }
            #expect(try version(stablePod) == "v2.0" && version(canaryPod) == "v2.1-canary")
            let stableClaim = try #require(claim(objects, "anything-llm-stable"))
            let canaryClaim = try #require(claim(objects, "anything-llm-canary"))
            #expect(stableClaim != canaryClaim)
            let stableFiles = try volumeFiles(stableClaim), canaryFiles = try volumeFiles(canaryClaim)
            #expect(
                stableFiles["who"] == "1000:anything-llm-stable" && canaryFiles["who"] == "1000:anything-llm-canary")
            // The settings file, created in each track's own claim before the app started.
            #expect(stableFiles[".env"] == "1000:" && canaryFiles[".env"] == "1000:", "\(stableFiles) \(canaryFiles)")

            // Promote: the stable runs the canary's image on the stable's data.
            #expect(try stamp(["canary", "promote", folder]).status == 0)
            objects = try apply(folder, secret: secret)
            #expect(try ready(stablePod, readiness: readiness(objects, "anything-llm-stable")))
            #expect(try version(stablePod) == "v2.1-canary")
            #expect(try exec(stablePod, "cat \"$STORAGE_DIR/who\"") == "anything-llm-stable")

            // Next: a new canary on a new, empty claim; the stable's data untouched.
            let n = try stamp(["canary", "next", "--canary", locks["v2.2"]!, folder])
            #expect(n.status == 0, "\(n.err)")
            objects = try apply(folder, secret: secret)
            let nextClaim = try #require(claim(objects, "anything-llm-canary"))
            #expect(nextClaim != canaryClaim && nextClaim != stableClaim)
            #expect(try ready(canaryPod, readiness: readiness(objects, "anything-llm-canary")))
            #expect(try version(canaryPod) == "v2.2")
            #expect(try exec(canaryPod, "ls -A \"$STORAGE_DIR\"") == ".env")
            #expect(try volumeFiles(stableClaim)["who"] == "1000:anything-llm-stable")
        }
    }
}
